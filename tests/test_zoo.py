"""The model zoo: specs/vgg16.yaml, resnet50.yaml, inception_v3.yaml and mobilenet.yaml are
the networks keras.applications builds.

For each model, at its default size and one other configuration, the real Keras model (random
weights, random BatchNorm statistics) is compared with the spec: every layer's output shape
and parameter counts, then its `.weights.h5` file, read by xgraph, must make both xgraph
builds compute what Keras computes at the logits and at named intermediate nodes.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.zoo_harness import (
    SPECS,
    KerasFacts,
    Variant,
    analysed_spec,
    assert_import_computes_keras,
    assert_layers_match,
    assert_outputs_match,
    import_keras,
)
from xgraph.api import load
from xgraph.backend import load_backend
from xgraph.weights.formats import read_weights

# REFERENCE.md: keras.applications with weights=None and default arguments.
REFERENCE_COUNTS = {
    "vgg16": (138_357_544, 138_357_544, 0),
    "resnet50": (25_636_712, 25_583_592, 53_120),
    "inception_v3": (23_851_784, 23_817_352, 34_432),
    "mobilenet": (4_253_864, 4_231_976, 21_888),
}
VARIANTS = [
    Variant(
        "vgg16",
        "vgg16",
        "VGG16",
        features=("block1_pool", "block3_conv3", "block5_pool", "fc2"),
        batch=1,
    ),
    Variant(
        "vgg16_no_top_160_avg",
        "vgg16",
        "VGG16",
        {"include_top": False, "input_shape": (160, 160, 3), "pooling": "avg"},
        ("include_top=false", "input_shape=[160,160,3]", "pooling=avg"),
        features=("block2_pool", "block5_conv3"),
    ),
    Variant(
        "resnet50",
        "resnet50",
        "ResNet50",
        features=("pool1_pool", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out"),
        batch=1,
    ),
    Variant(
        "resnet50_161",
        "resnet50",
        "ResNet50",
        {"input_shape": (161, 161, 3)},
        ("input_shape=[161,161,3]",),
        features=("conv2_block1_out", "conv4_block1_out", "conv5_block3_out"),
        batch=1,
    ),
    Variant(
        "inception_v3",
        "inception_v3",
        "InceptionV3",
        features=("mixed0", "mixed3", "mixed7", "mixed9_1", "mixed10"),
        batch=1,
        size=(299, 299, 3),
    ),
    Variant(
        "inception_v3_no_top_155_max",
        "inception_v3",
        "InceptionV3",
        {"include_top": False, "input_shape": (155, 155, 3), "pooling": "max"},
        ("include_top=false", "input_shape=[155,155,3]", "pooling=max"),
        features=("mixed2", "mixed8", "mixed9_0"),
        batch=1,
    ),
    Variant(
        "mobilenet",
        "mobilenet",
        "MobileNet",
        features=("conv1_relu", "conv_pw_2_relu", "conv_pw_6_relu", "conv_pw_13_relu"),
    ),
    Variant(
        "mobilenet_alpha_0.75_160",
        "mobilenet",
        "MobileNet",
        {"alpha": 0.75, "input_shape": (160, 160, 3)},
        ("alpha=0.75", "input_shape=[160,160,3]"),
        features=("conv_pw_3_relu", "conv_pw_11_relu"),
    ),
]


@pytest.mark.parametrize("spec", sorted(REFERENCE_COUNTS))
def test_parameter_totals_equal_the_reference(spec: str) -> None:
    analysed = load(SPECS / f"{spec}.yaml")
    counts = (analysed.total_params, analysed.trainable_params, analysed.non_trainable_params)
    assert counts == REFERENCE_COUNTS[spec]


@pytest.mark.parametrize("keras_run", VARIANTS, ids=lambda v: v.id, indirect=True)
def test_spec_is_the_keras_model(keras_run: KerasFacts, request: pytest.FixtureRequest) -> None:
    """Layers, counts, and both builds from Keras's weights file against Keras's numbers."""
    variant = request.node.callspec.params["keras_run"]
    analysed = analysed_spec(variant)
    assert_layers_match(analysed, keras_run)
    assert keras_run.weights_file is not None
    weights = read_weights(keras_run.weights_file, analysed)
    for backend_name in ("torch", "keras"):
        errors = assert_outputs_match(analysed, weights, variant, keras_run, backend_name)
        print(variant.id, backend_name, {k: f"{v:.1e}" for k, v in errors.items()})
    assert_import_computes_keras(variant, keras_run, analysed)


@pytest.mark.parametrize(
    ("alpha", "depth_multiplier"), [(0.25, 2), (1.3, 1)], ids=["0.25x2", "1.3"]
)
def test_mobilenet_width_multiplier_counts(alpha: float, depth_multiplier: int) -> None:
    """int(filters * alpha) in the spec's expression language gives Keras's layer widths."""
    keras = import_keras()
    model = keras.applications.MobileNet(
        weights=None, alpha=alpha, depth_multiplier=depth_multiplier, input_shape=(64, 64, 3)
    )
    analysed = load(
        SPECS / "mobilenet.yaml",
        [f"alpha={alpha}", f"depth_multiplier={depth_multiplier}", "input_shape=[64,64,3]"],
    )
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    for node in analysed.graph.nodes:
        if node.name in shapes:  # explicitly named, such as conv_pw_13
            assert analysed.shapes[node.name] == shapes[node.name], node.name
    assert len(analysed.graph) == len(model.layers)
    assert analysed.total_params == model.count_params()


def test_reshape_between_images_matches_keras() -> None:
    """A reshape that no zoo model needs: (H, W, C) values into another image shape, which
    the torch build does with a transpose either side."""
    from xgraph.api import loads

    analysed = loads(
        "xgraph: 1\nname: r\ninputs: [{name: x, shape: [2, 3, 4]}]\n"
        "nodes: [{name: out, op: reshape, target_shape: [4, 6, 1]}, "
        "{name: out2, op: reshape, target_shape: [6, 2, 2], inputs: x}]\n"
        "outputs: [out, out2]\n"
    )
    x = np.random.default_rng(0).normal(size=(2, 2, 3, 4)).astype(np.float32)
    for backend_name in ("torch", "keras"):
        backend = load_backend(backend_name)
        got = backend.predict(backend.build(analysed, {}), [x])
        np.testing.assert_array_equal(got[0], x.reshape(2, 4, 6, 1))
        np.testing.assert_array_equal(got[1], x.reshape(2, 6, 2, 2))
