"""specs/xception.yaml against the real keras.applications.Xception, layer by layer.

Keras names most layers explicitly (block2_sepconv1, ...) and the spec uses the same names, so
those are compared by name; the residual convolutions, their BatchNorms and the adds, which
Keras names automatically, are compared by structure (op, output shape, parameter counts).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from xgraph.api import load
from xgraph.ir.analysis import AnalysedGraph

# Keras layer classes and the op of the spec that stands for each.
KERAS_OPS = {
    "InputLayer": "input",
    "Conv2D": "conv2d",
    "SeparableConv2D": "separable_conv2d",
    "BatchNormalization": "batch_norm",
    "Activation": "activation",
    "MaxPooling2D": "max_pool2d",
    "Add": "add",
    "GlobalAveragePooling2D": "global_avg_pool",
    "GlobalMaxPooling2D": "global_max_pool",
    "Dense": "dense",
}


# Layers keras.applications.Xception does not name: Keras numbers them per model built.
KERAS_AUTO_NAME = re.compile(
    r"(input_layer|conv2d|batch_normalization|add|global_(average|max)_pooling2d)(_\d+)?"
)
# What the spec calls them instead.
SPEC_NAME_OF_AUTO = re.compile(r"input_layer|block\d+_(residual|residual_bn|add)|avg_pool|max_pool")


class Layer(NamedTuple):
    """What is compared of one layer: its op, output shape (batch dropped) and weight counts."""

    op: str
    shape: tuple[int, ...]
    trainable: int
    non_trainable: int


class Pair(NamedTuple):
    keras: dict[str, Layer]
    spec: dict[str, Layer]
    layer_count: int
    keras_totals: tuple[int, int, int]
    analysed: AnalysedGraph


def _size(weights: list[Any]) -> int:
    return sum(int(w.numpy().size) for w in weights)


def keras_layers(model: Any) -> dict[str, Layer]:
    return {
        layer.name: Layer(
            KERAS_OPS[type(layer).__name__],
            tuple(layer.output.shape[1:]),
            _size(layer.trainable_weights),
            _size(layer.non_trainable_weights),
        )
        for layer in model.layers
    }


def spec_layers(analysed: AnalysedGraph) -> dict[str, Layer]:
    return {
        node.name: Layer(
            node.op,
            analysed.shapes[node.name],
            analysed.counts[node.name].trainable,
            analysed.counts[node.name].non_trainable,
        )
        for node in analysed.graph.nodes
    }


def import_keras() -> Any:
    """Keras on its TensorFlow backend, which is chosen when keras is first imported."""
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras


def build_pair(spec: Path, keras_args: dict[str, Any], overrides: list[str]) -> Pair:
    model = import_keras().applications.Xception(weights=None, **keras_args)
    totals = (
        model.count_params(),
        _size(model.trainable_weights),
        _size(model.non_trainable_weights),
    )
    analysed = load(spec, overrides)
    return Pair(keras_layers(model), spec_layers(analysed), len(model.layers), totals, analysed)


# Keras's arguments, the spec's overrides, and the number of layers both must have.
CASES = {
    "299": ({}, [], 134),
    "224": ({"input_shape": (224, 224, 3)}, ["input_shape=[224, 224, 3]"], 134),
    "no_top": (
        {"include_top": False, "input_shape": (299, 299, 3)},
        ["include_top=false"],
        132,
    ),
    # Odd, non-square and one channel: every "same" split and pool size is exercised anew.
    "odd_max_pool": (
        {"include_top": False, "input_shape": (150, 201, 1), "pooling": "max"},
        ["include_top=false", "pooling=max", "input_shape=[150, 201, 1]"],
        133,
    ),
}


@pytest.fixture(scope="module", params=list(CASES))
def pair(request: pytest.FixtureRequest, xception_path: Path) -> Pair:
    """Keras's Xception and the spec's, built once per module for each configuration."""
    keras_args, overrides, layer_count = CASES[request.param]
    pair = build_pair(xception_path, keras_args, overrides)
    assert pair.layer_count == layer_count, "keras.applications.Xception changed"
    return pair


def shared_names(pair: Pair) -> list[str]:
    """The spec's nodes that have a Keras layer of the same name."""
    return [name for name in pair.spec if name in pair.keras]


def test_every_explicitly_named_keras_layer_is_a_spec_node(pair: Pair) -> None:
    named = [name for name in pair.keras if not KERAS_AUTO_NAME.fullmatch(name)]
    assert len(named) >= 110
    assert [name for name in named if name not in pair.spec] == []


def test_only_layers_keras_names_automatically_lack_a_twin_by_name(pair: Pair) -> None:
    unmatched = [name for name in pair.spec if name not in pair.keras]
    assert [name for name in unmatched if not SPEC_NAME_OF_AUTO.fullmatch(name)] == []


def test_named_layers_have_the_keras_output_shape(pair: Pair) -> None:
    for name in shared_names(pair):
        assert pair.spec[name].shape == pair.keras[name].shape, name


def test_named_layers_are_the_same_keras_layer_kind(pair: Pair) -> None:
    for name in shared_names(pair):
        assert pair.spec[name].op == pair.keras[name].op, name


def test_named_layers_have_the_keras_parameter_counts(pair: Pair) -> None:
    for name in shared_names(pair):
        ours, theirs = pair.spec[name], pair.keras[name]
        assert (ours.trainable, ours.non_trainable) == (theirs.trainable, theirs.non_trainable), (
            name
        )


def test_every_layer_has_a_structural_twin(pair: Pair) -> None:
    """Automatically named layers too: the multisets of (op, shape, counts) are equal."""
    assert Counter(pair.spec.values()) == Counter(pair.keras.values())


def test_layer_count_matches_keras(pair: Pair) -> None:
    assert len(pair.spec) == pair.layer_count


def test_parameter_totals_match_keras(pair: Pair) -> None:
    total, trainable, non_trainable = pair.keras_totals
    assert pair.analysed.total_params == total
    assert pair.analysed.trainable_params == trainable
    assert pair.analysed.non_trainable_params == non_trainable
