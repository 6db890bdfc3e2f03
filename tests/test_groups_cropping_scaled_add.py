"""Issue 25's grouped convolution (`groups` on conv2d), `cropping2d` and `scaled_add` beyond
their op examples (tests/test_training_new_ops.py trains them): `build --optimize` (a BatchNorm
folded into a grouped conv) keeps every node's value in every backend, Keras weight files
made by Keras itself (keras.applications' CustomScaleLayer) load, and generated torch code
initialises grouped and depthwise kernels with Keras's fans for each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import import_source
from new_op_specs import GROUPED_SPEC

from xgraph.api import codegen, loads
from xgraph.backend import load_backend
from xgraph.passes.optimize import optimize
from xgraph.reports.parity import probe_every_node, relative_error
from xgraph.weights.formats import read_weights
from xgraph.weights.initial import fans, initial_weights, random_weights


@pytest.mark.parametrize("backend_name", ["torch", "keras", "onnx"])
def test_optimize_keeps_every_node_and_folds_into_grouped_convs(backend_name: str) -> None:
    analysed = loads(GROUPED_SPEC)
    weights = random_weights(analysed, seed=3)  # random BatchNorm statistics too
    optimized = optimize(analysed, weights)
    kept = set(optimized.analysed.graph.names)
    assert {"stem_bn", "branch_1b_bn"}.isdisjoint(kept), "a BatchNorm was not folded"
    assert {"residual", "crop"} <= kept
    backend = load_backend(backend_name)
    original = probe_every_node(analysed, weights, [backend])[backend_name]
    rewritten = probe_every_node(optimized.analysed, optimized.weights, [backend])[backend_name]
    value_of = optimized.value_of(analysed)
    errors = {name: relative_error(v, original[value_of[name]]) for name, v in rewritten.items()}
    worst = max(errors, key=errors.__getitem__)
    assert errors[worst] <= 1e-5, f"{worst}: {errors[worst]:.2e}"


def test_keras_layer_order_counts_the_scale_layer_on_the_branch_only() -> None:
    """scaled_add's Rescaling sits on its second input alone: the order Keras gives
    `model.layers`, which positional weight files follow, is the one xgraph works out
    (with the Rescaling counted on both inputs, `short` would come before `long_b`)."""
    from xgraph_keras.layer_order import keras_layer_order

    spec = """\
xgraph: 1
name: order
inputs: [{name: image, shape: [5, 5, 2]}]
nodes:
  - {name: long_a, op: conv2d, filters: 2, kernel_size: 1}
  - {name: long_b, op: conv2d, filters: 2, kernel_size: 1}
  - {name: short, op: conv2d, filters: 2, kernel_size: 1, inputs: [image]}
  - {name: sum, op: scaled_add, scale: 0.5, inputs: [short, long_b]}
"""
    analysed = loads(spec)
    model = load_backend("keras").build(analysed)
    nodes = set(analysed.graph.names)
    assert keras_layer_order(analysed) == [
        layer.name for layer in model.layers if layer.name in nodes
    ]
    assert keras_layer_order(analysed).index("long_b") < keras_layer_order(analysed).index("short")


def _keras_applications_model(analysed: Any) -> Any:
    """GROUPED_SPEC written as keras.applications writes InceptionResNetV2: the scaled sum is its
    CustomScaleLayer, one layer of Keras's own naming."""
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    from xgraph_keras.framework import keras

    layers = keras.layers
    image = keras.Input((9, 9, 4), name="image")
    x = layers.Conv2D(8, 3, groups=2, padding="same", use_bias=False, name="stem")(image)
    x = layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_act")(x)
    b0 = layers.Conv2D(4, 1, activation="relu", name="branch_0")(x)
    b1 = layers.Conv2D(4, 1, name="branch_1a")(x)
    b1 = layers.Conv2D(4, 3, groups=4, padding="same", use_bias=False, name="branch_1b")(b1)
    b1 = layers.BatchNormalization(momentum=0.9, name="branch_1b_bn")(b1)
    up = layers.Conv2D(8, 1, name="up")(layers.Concatenate(name="mixed")([b0, b1]))
    x = CustomScaleLayer(0.17)([x, up])
    x = layers.Activation("relu", name="residual_act")(x)
    x = layers.Cropping2D(((1, 0), (1, 0)), name="crop")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(image, layers.Dense(3, name="logits")(x))


def test_a_keras_made_weights_file_loads_and_computes_keras_numbers(tmp_path: Path) -> None:
    """Keras's own model (CustomScaleLayer, grouped Conv2D, Cropping2D) with random weights,
    saved as a positional `.weights.h5`: read into the spec, all three backends compute its
    outputs."""
    analysed = loads(GROUPED_SPEC)
    model = _keras_applications_model(analysed)
    rng = np.random.default_rng(1)
    model.set_weights(
        [np.abs(rng.normal(size=w.shape)).astype(np.float32) + 0.1 for w in model.get_weights()]
    )
    path = tmp_path / "vocabulary.weights.h5"
    model.save_weights(path)
    weights = read_weights(path, analysed)
    assert weights["branch_1b/kernel"].shape == (3, 3, 1, 4)
    x = rng.normal(size=(2, 9, 9, 4)).astype(np.float32)
    expected = np.asarray(model.predict_on_batch(x))
    for name in ("torch", "keras", "onnx"):
        backend = load_backend(name)
        (got,) = backend.predict(backend.build(analysed, weights), [x])
        assert relative_error(got, expected) <= 1e-5, name


INIT_SPEC = """\
xgraph: 1
name: init_groups
initializer: {scheme}
inputs:
  - {{name: image, shape: [16, 16, 64]}}
nodes:
  - {{name: grouped, op: conv2d, filters: 128, kernel_size: 3, groups: 4, padding: same}}
  - {{name: per_channel, op: conv2d, filters: 128, kernel_size: 7, groups: 128,
     padding: same}}
  - {{name: dw, op: depthwise_conv2d, kernel_size: 7, padding: same}}
  - {{name: dw_strided, op: depthwise_conv2d, kernel_size: 5, strides: 2, padding: same,
     depth_multiplier: 2}}
  - {{name: sep, op: separable_conv2d, filters: 64, kernel_size: 3, padding: same}}
"""
# The canonical kernel and the generated module's tensor that holds it.
INIT_KERNELS = {
    "grouped/kernel": "grouped.weight",
    "per_channel/kernel": "per_channel.weight",  # (7, 7, 1, 128): fans 49 and 49 * 128
    "dw/depthwise_kernel": "dw.weight",  # (7, 7, 128, 1): fans 49 * 128 and 49
    "dw_strided/depthwise_kernel": "dw_strided.weight",
    "sep/depthwise_kernel": "sep.depthwise.weight",
}
VARIANCE = {
    "glorot_uniform": lambda fan_in, fan_out: 2.0 / (fan_in + fan_out),
    "he_normal": lambda fan_in, fan_out: 2.0 / fan_in,
}


@pytest.mark.parametrize("scheme", sorted(VARIANCE))
def test_generated_grouped_and_depthwise_kernels_have_keras_fans(scheme: str, tmp_path) -> None:
    """A Conv2D with groups = channels and a DepthwiseConv2D compute alike, in torch the same
    grouped nn.Conv2d, but Keras counts their fans differently (49 in for the grouped
    kernel, 49 * 128 for the depthwise one): the generated init follows each."""
    analysed = loads(INIT_SPEC.format(scheme=scheme))
    module = import_source(codegen(analysed, "torch"), tmp_path, f"init_groups_{scheme}")
    state = module.InitGroups().state_dict()
    drawn = initial_weights(analysed, seed=0)
    for canonical, key in INIT_KERNELS.items():
        expected = VARIANCE[scheme](*fans(drawn[canonical].shape))
        generated = float(state[key].double().var())
        assert generated == pytest.approx(expected, rel=0.1), (key, generated, expected)
        assert generated == pytest.approx(float(drawn[canonical].var()), rel=0.15), key


# InceptionResNetV2's shape: repeated blocks whose scale (and groups) differ between stages,
# so that the generated code has block definitions taking them, and a value-only `scale`
# parameter; NASNet's crop after them.
BLOCKS_SPEC = """\
xgraph: 1
name: scaled_blocks
params:
  last_scale: {type: float, default: 1.0}
inputs: [{name: image, shape: [8, 8, 8]}]
blocks:
  residual_block:
    params:
      scale: {type: float}
      groups: {type: int, default: 2}
    nodes:
      - {name: "${name}_branch", op: conv2d, filters: 8, kernel_size: 3, padding: same,
         groups: "${groups}"}
      - {name: "${name}_up", op: conv2d, filters: 8, kernel_size: 1}
      - {name: "${name}_sum", op: scaled_add, scale: "${scale}", inputs: ["${input}", "${name}_up"]}
      - {name: "${name}_ac", op: activation, activation: relu}
nodes:
  - {use: residual_block, name: "block35_${i + 1}", repeat: 2, args: {scale: 0.17}}
  - {use: residual_block, name: "block17_${i + 1}", repeat: 2, args: {scale: 0.1, groups: 4}}
  - {name: block8_up, op: conv2d, filters: 8, kernel_size: 1}
  - {name: block8, op: scaled_add, scale: "${last_scale}", inputs: [block17_2_ac, block8_up]}
  - {name: crop, op: cropping2d, cropping: [[1, 0], [0, 2]]}
  - {name: gap, op: global_avg_pool}
"""


def test_generated_blocks_with_scales_compute_the_builds(tmp_path: Path) -> None:
    """Keras: a block function taking `scale` (the Rescaling inline on the branch); torch:
    the sum and the crop as expressions in `forward`; both equal to the builds."""
    from test_codegen import assert_generated_models_equal_the_builds

    from xgraph_keras.backend import KerasBackend
    from xgraph_torch.backend import TorchBackend

    analysed = loads(BLOCKS_SPEC)
    sources = {backend: codegen(analysed, backend) for backend in ("torch", "keras")}
    assert 'layers.Rescaling(scale, name=f"{name}_sum_scale")(' in sources["keras"]
    assert "def scaled_blocks(last_scale=1.0):" in sources["keras"]
    assert "x = x + branch * 0.1\n" in sources["torch"]
    assert "x = x[:, :, 1:, :-2]\n" in sources["torch"]
    assert_generated_models_equal_the_builds(
        analysed, sources["torch"], sources["keras"], (TorchBackend(), KerasBackend()), tmp_path
    )
