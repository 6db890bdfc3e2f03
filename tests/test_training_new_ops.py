"""The ops of today's CNNs train alike in torch and Keras: rescaling and normalization in the
model, squeeze-and-excitation (keepdims pooling, hard_sigmoid, multiply), hard_swish, and
EfficientNet's drop-connect (dropout with noise_shape [1, 1, 1]); ConvNeXt's layer_norm,
dense layers on images, gelu, layer_scale and stochastic_depth; grouped convolutions,
InceptionResNetV2's scaled_add and NASNet's cropping2d. Drop-connect and drop-path
drop whole examples in training and nothing in inference."""

from __future__ import annotations

import numpy as np
import pytest
from new_op_specs import GROUPED_SPEC

from xgraph.api import loads
from xgraph.backend import load_backend
from xgraph.training.recipe import TrainingRecipe
from xgraph.training.replicas import Replicas
from xgraph.training.schedule import learning_rate
from xgraph.training.trainer import load_trainer
from xgraph.weights.initial import initial_weights

SPEC = """\
xgraph: 1
name: modern
params:
  drop: {type: float, default: 0.0}
inputs: [{name: image, shape: [12, 12, 3]}]
nodes:
  - {name: scale, op: rescaling, scale: 0.00392156862745098}
  - {name: norm, op: normalization}
  - {name: stem, op: conv2d, filters: 8, kernel_size: 3, strides: 2, padding: same, use_bias: false}
  - {name: stem_bn, op: batch_norm, momentum: 0.9}
  - {name: stem_act, op: activation, activation: hard_swish}
  - {name: se_squeeze, op: global_avg_pool, keepdims: true}
  - {name: se_reduce, op: conv2d, filters: 2, kernel_size: 1, activation: relu}
  - {name: se_expand, op: conv2d, filters: 8, kernel_size: 1}
  - {name: se_gate, op: activation, activation: hard_sigmoid}
  - {name: se_excite, op: multiply, inputs: [stem_act, se_gate]}
  - {name: project, op: conv2d, filters: 8, kernel_size: 1, use_bias: false}
  - {name: project_bn, op: batch_norm, momentum: 0.9}
  - {name: drop, op: dropout, rate: "${drop}", noise_shape: [1, 1, 1]}
  - {name: add, op: add, inputs: [drop, stem_act]}
  - {name: gap, op: global_avg_pool}
  - {name: logits, op: dense, units: 4}
"""
# A ConvNeXt block (depthwise 7x7, LayerNorm, an MLP of dense layers on the channels with
# GELU, LayerScale, drop-path) between a patchify stem and ConvNeXt's head.
CONVNEXT_SPEC = """\
xgraph: 1
name: convnext_like
params:
  drop: {type: float, default: 0.0}
inputs: [{name: image, shape: [12, 12, 3]}]
nodes:
  - {name: stem, op: conv2d, filters: 8, kernel_size: 4, strides: 4}
  - {name: stem_ln, op: layer_norm, epsilon: 1.0e-6}
  - {name: dw, op: depthwise_conv2d, kernel_size: 3, padding: same}
  - {name: ln, op: layer_norm, epsilon: 1.0e-6}
  - {name: pw1, op: dense, units: 32}
  - {name: act, op: activation, activation: gelu}
  - {name: pw2, op: dense, units: 8}
  - {name: scale, op: layer_scale, init_value: 0.5}
  - {name: drop, op: stochastic_depth, rate: "${drop}"}
  - {name: add, op: add, inputs: [stem_ln, drop]}
  - {name: gap, op: global_avg_pool}
  - {name: head_ln, op: layer_norm, center: false}
  - {name: logits, op: dense, units: 4}
"""
SPECS = {"modern": SPEC, "convnext_like": CONVNEXT_SPEC, "grouped": GROUPED_SPEC}
# A weight each spec's new ops train
TRAINED = {"modern": "se_expand/kernel", "convnext_like": "scale/gamma", "grouped": "up/kernel"}
# The specs with drop-connect or drop-path (`drop`); the grouped one has none
DROPPING = ("convnext_like", "modern")
BATCH, STEPS = 8, 4


def _recipe() -> TrainingRecipe:
    return TrainingRecipe.model_validate(
        {
            "optimizer": {"name": "adam", "learning_rate": 0.01},
            "schedule": {"name": "constant"},
            "batch_size": BATCH,
            "epochs": 2,
        }
    )


def _batches(spec: str, steps: int, seed: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """Batches of the spec's input and classes: pixels in [0, 255] for the specs that
    rescale or patchify them, values around zero for the grouped one."""
    analysed = loads(SPECS[spec])
    shape = (BATCH, *analysed.input_shapes()[0])
    classes = analysed.shapes[analysed.graph.outputs[0]][-1]
    rng = np.random.default_rng(seed)

    def images() -> np.ndarray:
        pixels = spec != "grouped"
        values = rng.uniform(0, 255, size=shape) if pixels else rng.standard_normal(shape)
        return values.astype(np.float32)

    return [(images(), rng.integers(0, classes, size=BATCH).astype(np.int64)) for _ in range(steps)]


def _start(drop: float, spec: str = "modern") -> tuple:
    analysed = loads(SPECS[spec], [f"drop={drop}"] if spec in DROPPING else [])
    weights = initial_weights(analysed, seed=2)
    if spec == "modern":
        # the statistics a Normalization adapted to the rescaled pixels, uniform in [0, 1], has
        weights["norm/mean"] = np.asarray([0.45, 0.5, 0.55], np.float32)
        weights["norm/variance"] = np.asarray([0.08, 0.09, 0.07], np.float32)
    elif spec == "convnext_like":  # pixels in [0, 255] through a 4x4 patch: smaller kernels
        weights["stem/kernel"] *= np.float32(0.01)  # keep GELU's range
    return analysed, weights


def _train(backend: str, analysed, weights, batches) -> tuple[list[float], dict]:
    recipe = _recipe()
    trainer = load_trainer(backend)(analysed, weights, recipe, Replicas(), False)
    losses = []
    for step, (images, labels) in enumerate(batches):
        rate = learning_rate(recipe, step, 2)
        losses.append(trainer.train_step(images, labels, rate, step).loss)
    return losses, trainer.weights()


@pytest.mark.parametrize("spec", sorted(SPECS))
def test_steps_agree_in_torch_and_keras_with_every_new_op(spec: str) -> None:
    analysed, weights = _start(0.0, spec)
    batches = _batches(spec, STEPS)
    keras_losses, keras_weights = _train("keras", analysed, weights, batches)
    torch_losses, torch_weights = _train("torch", analysed, weights, batches)
    np.testing.assert_allclose(torch_losses, keras_losses, rtol=1e-4)
    for key in weights:
        scale = max(np.abs(keras_weights[key]).max(), 1e-12)
        difference = np.abs(torch_weights[key] - keras_weights[key]).max() / scale
        assert difference <= 1e-4, f"{key}: {difference:.2e} relative"
    if spec == "modern":
        for key in ("norm/mean", "norm/variance", "norm/count"):  # statistics, not trained
            np.testing.assert_array_equal(torch_weights[key], weights[key])
    for key in (TRAINED[spec], "stem/kernel") if spec == "grouped" else (TRAINED[spec],):
        assert not np.array_equal(torch_weights[key], weights[key]), f"{key} did not train"


DROP_SPEC = """\
xgraph: 1
name: drop_connect
inputs: [{name: x, shape: [3, 4, 5]}]
nodes:
  - NODE
"""
# EfficientNet's drop-connect and ConvNeXt's drop-path
DROP_NODES = {
    "dropout": "{name: drop, op: dropout, rate: 0.5, noise_shape: [1, 1, 1]}",
    "stochastic_depth": "{name: drop, op: stochastic_depth, rate: 0.5}",
}


def _dropped_in_training(backend_name: str, op: str, x: np.ndarray) -> np.ndarray:
    """The layer's output for `x` in training mode, channels-last."""
    backend = load_backend(backend_name)
    analysed = loads(DROP_SPEC.replace("NODE", DROP_NODES[op]))
    model = backend.build(analysed, {})
    if backend_name == "torch":
        import torch

        model.train()
        torch.manual_seed(0)
        out = model(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))))
        return out.detach().numpy().transpose(0, 2, 3, 1)
    import keras

    keras.utils.set_random_seed(0)
    return np.asarray(model(x, training=True))


@pytest.mark.parametrize("op", sorted(DROP_NODES))
@pytest.mark.parametrize("backend_name", ["torch", "keras"])
def test_drop_connect_drops_whole_examples_at_its_rate(backend_name: str, op: str) -> None:
    """Each example is kept whole (scaled by 1 / (1 - rate)) or dropped whole; about half of
    400 are dropped (4 standard deviations: 0.5 +- 0.1); in inference nothing is."""
    x = np.ones((400, 3, 4, 5), np.float32)
    y = _dropped_in_training(backend_name, op, x)
    per_example = y.reshape(400, -1)
    kept = np.all(per_example == 2.0, axis=1)
    dropped = np.all(per_example == 0.0, axis=1)
    assert np.all(kept | dropped), "a mask that is not per example"
    assert 0.4 <= dropped.mean() <= 0.6, dropped.mean()
    backend = load_backend(backend_name)
    analysed = loads(DROP_SPEC.replace("NODE", DROP_NODES[op]))
    inference = backend.predict(backend.build(analysed, {}), [x])[0]
    np.testing.assert_array_equal(inference, x)


@pytest.mark.parametrize("spec", DROPPING)
@pytest.mark.parametrize("backend_name", ["torch", "keras"])
def test_a_model_with_drop_connect_trains(backend_name: str, spec: str) -> None:
    analysed, weights = _start(0.3, spec)
    batch = _batches(spec, 1, seed=9)[0]
    losses, _ = _train(backend_name, analysed, weights, [batch] * 12)
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3]), losses
