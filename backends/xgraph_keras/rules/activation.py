"""Activations in Keras, by the names the spec shares with Keras."""

from __future__ import annotations

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.activation import ActivationAttrs
from xgraph.ops.base import attrs_of
from xgraph_keras.rules.base import KerasRule, layer, weights


def lower_activation(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [layer(node, "Activation", activation=attrs_of(node, ActivationAttrs).activation)]


def lower_prelu(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    images = len(analysed.input_shape_of(node)[0]) == 3
    return [layer(node, "PReLU", shared_axes=[1, 2] if images else None)]


RULES = {
    "activation": KerasRule(lower_activation),
    "prelu": KerasRule(lower_prelu, "PReLU", weights(("alpha", None))),
}
