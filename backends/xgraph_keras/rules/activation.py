"""Activations in Keras, by the names the spec shares with Keras."""

from __future__ import annotations

from typing import Any

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.activation import ActivationAttrs
from xgraph.ops.base import attrs_of
from xgraph_keras.rules.base import KerasRule, layer, weights

# The spec's activations Keras has no name for: functions of xgraph_keras.layers.
FUNCTIONS = frozenset({"gelu_tanh"})


def keras_activation(name: str) -> Any:
    """What a Keras layer's `activation` takes for the spec's activation `name`: the name,
    or xgraph's function where Keras has no name for it (gelu_tanh). The rules are read
    without keras (`xgraph validate`): xgraph_keras.layers is imported when one is used."""
    if name not in FUNCTIONS:
        return name
    from xgraph_keras import layers

    return layers.ACTIVATION_FUNCTIONS[name]


def lower_activation(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    activation = keras_activation(attrs_of(node, ActivationAttrs).activation)
    return [layer(node, "Activation", activation=activation)]


def lower_prelu(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    images = len(analysed.input_shape_of(node)[0]) == 3
    return [layer(node, "PReLU", shared_axes=[1, 2] if images else None)]


RULES = {
    "activation": KerasRule(lower_activation),
    "prelu": KerasRule(lower_prelu, "PReLU", weights(("alpha", None))),
}
