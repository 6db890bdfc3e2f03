"""Activations in Keras, by the names the spec shares with Keras."""

from __future__ import annotations

from xgraph.analysis import AnalysedGraph
from xgraph.graph import Node
from xgraph.lowering import LayerCall
from xgraph_keras.rules.base import KerasRule, layer


def lower_activation(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [layer(node, "Activation", activation=node.attrs.activation)]


RULES = {"activation": KerasRule(lower_activation)}
