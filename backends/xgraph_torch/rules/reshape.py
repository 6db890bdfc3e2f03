"""Inputs and zero padding in torch."""

from __future__ import annotations

from xgraph.analysis import AnalysedGraph
from xgraph.graph import Node
from xgraph.lowering import LayerCall
from xgraph_torch.rules.base import NN, TorchRule


def lower_input(analysed: AnalysedGraph, node: Node) -> None:
    return None


def lower_zero_pad2d(analysed: AnalysedGraph, node: Node) -> LayerCall:
    (top, bottom), (left, right) = node.attrs.padding
    return LayerCall(NN, "ZeroPad2d", {"padding": (left, right, top, bottom)})


RULES = {
    "input": TorchRule(lower_input),
    "zero_pad2d": TorchRule(lower_zero_pad2d),
}
