"""Joining branches in torch: add, a scaled residual sum, multiply, and concatenation on the
spec's axis as a torch dim."""

from __future__ import annotations

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.merge import ConcatAttrs, ScaledAddAttrs
from xgraph.weights.layouts import channels_first_dim
from xgraph_torch.rules.base import LAYERS, TorchRule


def lower_add(analysed: AnalysedGraph, node: Node) -> LayerCall:
    return LayerCall(LAYERS, "Add")


def lower_scaled_add(analysed: AnalysedGraph, node: Node) -> LayerCall:
    return LayerCall(LAYERS, "ScaledAdd", {"scale": attrs_of(node, ScaledAddAttrs).scale})


def lower_multiply(analysed: AnalysedGraph, node: Node) -> LayerCall:
    return LayerCall(LAYERS, "Multiply")


def lower_concat(analysed: AnalysedGraph, node: Node) -> LayerCall:
    axis = attrs_of(node, ConcatAttrs).axis
    rank = len(analysed.input_shape_of(node)[0])
    return LayerCall(LAYERS, "Concat", {"dim": channels_first_dim(axis, rank)})


RULES = {
    "add": TorchRule(lower_add),
    "scaled_add": TorchRule(lower_scaled_add),
    "multiply": TorchRule(lower_multiply),
    "concat": TorchRule(lower_concat),
}
