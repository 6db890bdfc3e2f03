"""The model zoo: specs/vgg16.yaml, resnet50.yaml, inception_v3.yaml and mobilenet.yaml are
the networks keras.applications builds.

For each model, at its default size and one other configuration, the real Keras model (random
weights, random BatchNorm statistics) is compared with the spec: every layer's output shape
and parameter counts, then its `.weights.h5` file, read by xgraph, must make both xgraph
builds compute what Keras computes at the logits and at named intermediate nodes.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xgraph.api import load
from xgraph.backend import load_backend
from xgraph.ir.analysis import AnalysedGraph
from xgraph.weights.formats import read_weights
from xgraph.weights.initial import Weights

SPECS = Path(__file__).resolve().parent.parent / "specs"

# REFERENCE.md: keras.applications with weights=None and default arguments.
REFERENCE_COUNTS = {
    "vgg16": (138_357_544, 138_357_544, 0),
    "resnet50": (25_636_712, 25_583_592, 53_120),
    "inception_v3": (23_851_784, 23_817_352, 34_432),
    "mobilenet": (4_253_864, 4_231_976, 21_888),
}
LOGITS_TOLERANCE = 1e-5
FEATURES_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Variant:
    """One configuration of one model: the Keras function's arguments, the same as `--set`
    overrides of the spec, and the explicitly named nodes compared besides the output."""

    id: str
    spec: str
    keras_function: str
    keras_args: dict[str, Any] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    batch: int = 2

    @property
    def size(self) -> tuple[int, int, int]:
        return self.keras_args.get("input_shape", DEFAULT_SIZES[self.spec])


DEFAULT_SIZES = {
    "vgg16": (224, 224, 3),
    "resnet50": (224, 224, 3),
    "inception_v3": (299, 299, 3),
    "mobilenet": (224, 224, 3),
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


def import_keras() -> Any:
    """Keras on TensorFlow, chosen before keras is first imported."""
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras


def randomise(model: Any, seed: int) -> None:
    """Perturbed kernels, random biases, and BatchNorm statistics far from (0, 1)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = []
        for variable, value in zip(layer.weights, layer.get_weights(), strict=True):
            if variable.name in ("gamma", "moving_variance"):
                value = rng.uniform(0.5, 1.5, value.shape)
            elif variable.name in ("beta", "moving_mean", "bias"):
                value = rng.normal(0.0, 0.1, value.shape)
            else:
                value = value * rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
            values.append(value.astype(np.float32))
        layer.set_weights(values)


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / np.abs(want).max())


@dataclass(frozen=True)
class KerasFacts:
    """What the Keras model says about itself: per layer, its output shape (batch excluded)
    and trainable / non-trainable counts; its totals; its weights file; and its outputs at
    the variant's features and at its own output, for `x`."""

    layers: dict[str, tuple[tuple[int, ...], int, int]]
    totals: tuple[int, int]
    weights_file: Path
    x: np.ndarray
    outputs: list[np.ndarray]


def layer_facts(layer: Any) -> tuple[tuple[int, ...], int, int]:
    trainable = sum(int(np.prod(v.shape)) for v in layer.trainable_weights)
    non_trainable = sum(int(np.prod(v.shape)) for v in layer.non_trainable_weights)
    return tuple(layer.output.shape[1:]), trainable, non_trainable


@pytest.fixture(scope="module")
def keras_facts(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KerasFacts]:
    """The Keras model of `request.param`, randomised, saved, and run once."""
    variant: Variant = request.param
    keras = import_keras()
    keras.utils.set_random_seed(0)
    build = getattr(keras.applications, variant.keras_function)
    model = build(weights=None, classifier_activation=None, **variant.keras_args)
    randomise(model, seed=1)
    folder = tmp_path_factory.mktemp(variant.id)
    weights_file = folder / f"{variant.id}.weights.h5"
    model.save_weights(weights_file)
    x = np.random.default_rng(2).uniform(-1, 1, (variant.batch, *variant.size))
    x = x.astype(np.float32)
    named = [model.get_layer(name).output for name in variant.features]
    outputs = keras.Model(model.input, [*named, model.output]).predict_on_batch(x)
    yield KerasFacts(
        layers={layer.name: layer_facts(layer) for layer in model.layers},
        totals=(
            sum(int(np.prod(v.shape)) for v in model.trainable_weights),
            sum(int(np.prod(v.shape)) for v in model.non_trainable_weights),
        ),
        weights_file=weights_file,
        x=x,
        outputs=[np.asarray(y) for y in outputs],
    )
    del model
    keras.backend.clear_session()
    shutil.rmtree(folder, ignore_errors=True)


def analysed_spec(variant: Variant) -> AnalysedGraph:
    return load(SPECS / f"{variant.spec}.yaml", [*variant.overrides, "classifier_activation=none"])


def assert_layers_match(analysed: AnalysedGraph, keras: KerasFacts) -> None:
    """Node for layer: explicitly named layers by name, with their output shape and counts;
    the automatically named ones (InceptionV3's branches, global pools) as a multiset of
    (shape, counts), since their names are Keras's numbering, not the spec's."""
    assert len(analysed.graph) == len(keras.layers)
    assert (analysed.trainable_params, analysed.non_trainable_params) == keras.totals
    spec_only: Counter = Counter()
    for node in analysed.graph.nodes:
        counts = analysed.counts[node.name]
        facts = (analysed.shapes[node.name], counts.trainable, counts.non_trainable)
        if node.name in keras.layers:
            assert facts == keras.layers[node.name], node.name
        else:
            spec_only[facts] += 1
    keras_only = Counter(
        facts for name, facts in keras.layers.items() if name not in analysed.graph
    )
    assert spec_only == keras_only


def assert_outputs_match(
    analysed: AnalysedGraph,
    weights: Weights,
    variant: Variant,
    keras: KerasFacts,
    backend_name: str,
) -> dict[str, float]:
    """The backend's build with Keras's weights, cut to the features and the output."""
    names = (*variant.features, *analysed.graph.outputs)
    features = analysed.with_outputs(names)
    kept = {node.name for node in features.graph.nodes}
    weights = {key: value for key, value in weights.items() if key.split("/")[0] in kept}
    backend = load_backend(backend_name)
    got = backend.predict(backend.build(features, weights), [keras.x])
    errors = {}
    for name, a, b in zip(names, got, keras.outputs, strict=True):
        assert a.shape == b.shape, name
        errors[name] = relative_error(a, b)
    tolerances = [FEATURES_TOLERANCE] * len(variant.features) + [LOGITS_TOLERANCE]
    for (name, error), tolerance in zip(errors.items(), tolerances, strict=True):
        assert error <= tolerance, f"{backend_name} {name}: relative error {error:.2e}"
    return errors


@pytest.mark.parametrize("spec", sorted(REFERENCE_COUNTS))
def test_parameter_totals_equal_the_reference(spec: str) -> None:
    analysed = load(SPECS / f"{spec}.yaml")
    counts = (analysed.total_params, analysed.trainable_params, analysed.non_trainable_params)
    assert counts == REFERENCE_COUNTS[spec]


@pytest.mark.parametrize("keras_facts", VARIANTS, ids=lambda v: v.id, indirect=True)
def test_spec_is_the_keras_model(keras_facts: KerasFacts, request: pytest.FixtureRequest) -> None:
    """Layers, counts, and both builds from Keras's weights file against Keras's numbers."""
    variant = request.node.callspec.params["keras_facts"]
    analysed = analysed_spec(variant)
    assert_layers_match(analysed, keras_facts)
    weights = read_weights(keras_facts.weights_file, analysed)
    for backend_name in ("torch", "keras"):
        errors = assert_outputs_match(analysed, weights, variant, keras_facts, backend_name)
        print(variant.id, backend_name, {k: f"{v:.1e}" for k, v in errors.items()})


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
