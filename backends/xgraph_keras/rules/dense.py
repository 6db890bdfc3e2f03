"""Dense layers, flatten and dropout in Keras."""

from __future__ import annotations

from xgraph.analysis import AnalysedGraph
from xgraph.graph import Node
from xgraph.lowering import LayerCall
from xgraph_keras.rules.base import KerasRule, layer, weights


def lower_dense(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    a = node.attrs
    return [layer(node, "Dense", units=a.units, activation=a.activation, use_bias=a.use_bias)]


def lower_flatten(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [layer(node, "Flatten")]


def lower_dropout(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [layer(node, "Dropout", rate=node.attrs.rate)]


RULES = {
    "dense": KerasRule(lower_dense, "Dense", weights(("kernel", 2), ("bias", 1))),
    "flatten": KerasRule(lower_flatten),
    "dropout": KerasRule(lower_dropout),
}
