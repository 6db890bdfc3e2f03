"""Joining branches in Keras; the spec's axis excludes the batch, Keras's includes it."""

from __future__ import annotations

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.merge import ConcatAttrs
from xgraph_keras.rules.base import KerasRule, layer


def lower_add(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [layer(node, "Add")]


def lower_multiply(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [layer(node, "Multiply")]


def lower_concat(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    axis = attrs_of(node, ConcatAttrs).axis
    return [layer(node, "Concatenate", axis=axis if axis < 0 else axis + 1)]


RULES = {
    "add": KerasRule(lower_add),
    "multiply": KerasRule(lower_multiply),
    "concat": KerasRule(lower_concat),
}
