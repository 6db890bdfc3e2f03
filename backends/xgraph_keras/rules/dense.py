"""Dense layers, flatten and dropout in Keras."""

from __future__ import annotations

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.dense import DenseAttrs, DropoutAttrs
from xgraph_keras.rules.base import KerasRule, layer, weights


def lower_dense(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    a = attrs_of(node, DenseAttrs)
    return [layer(node, "Dense", units=a.units, activation=a.activation, use_bias=a.use_bias)]


def lower_flatten(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [layer(node, "Flatten")]


def lower_dropout(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    a = attrs_of(node, DropoutAttrs)
    if a.noise_shape is None:
        return [layer(node, "Dropout", rate=a.rate)]
    return [layer(node, "Dropout", rate=a.rate, noise_shape=[None, *a.noise_shape])]


RULES = {
    "dense": KerasRule(lower_dense, "Dense", weights(("kernel", 2), ("bias", 1))),
    "flatten": KerasRule(lower_flatten),
    "dropout": KerasRule(lower_dropout),
}
