"""Joining branches in ONNX: Sum, and Concat on the spec's axis as an NCHW axis."""

from __future__ import annotations

from xgraph.analysis import AnalysedGraph
from xgraph.graph import Node
from xgraph_onnx.rules.base import Lowered, OnnxNode, OnnxRule, rank


def lower_add(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    return Lowered([OnnxNode("Sum", inputs, (node.name,))])


def lower_concat(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    dims = rank(analysed, node)
    axis = node.attrs.axis % dims
    onnx_axis = 1 if axis == dims - 1 else axis + 2
    return Lowered([OnnxNode("Concat", inputs, (node.name,), {"axis": onnx_axis})])


RULES = {"add": OnnxRule(lower_add), "concat": OnnxRule(lower_concat)}
