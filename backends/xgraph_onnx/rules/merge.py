"""Joining branches in ONNX: Sum, a scaled residual sum as Mul and Add, and Concat on the
spec's axis as an NCHW axis."""

from __future__ import annotations

from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.merge import ConcatAttrs, ScaledAddAttrs
from xgraph.weights.layouts import channels_first_dim
from xgraph_onnx.rules.base import Lowered, OnnxNode, OnnxRule, constant, inner, rank


def lower_add(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    return Lowered([OnnxNode("Sum", inputs, (node.name,))])


def lower_scaled_add(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    """inputs[0] + inputs[1] * scale, the scale a float32 constant, as Keras computes it."""
    scale, scaled = constant(node, "scale"), inner(node, "scaled")
    return Lowered(
        [
            OnnxNode("Mul", (inputs[1], scale), (scaled,)),
            OnnxNode("Add", (inputs[0], scaled), (node.name,)),
        ],
        {scale: attrs_of(node, ScaledAddAttrs).scale},
    )


def lower_multiply(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    """Mul is binary: a chain for more inputs. Inputs of one rank broadcast alike in NCHW."""
    nodes, product = [], inputs[0]
    for index, value in enumerate(inputs[1:], start=1):
        target = node.name if index == len(inputs) - 1 else f"{node.name}/product{index}"
        nodes.append(OnnxNode("Mul", (product, value), (target,)))
        product = target
    return Lowered(nodes)


def lower_concat(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    axis = channels_first_dim(attrs_of(node, ConcatAttrs).axis, rank(analysed, node))
    return Lowered([OnnxNode("Concat", inputs, (node.name,), {"axis": axis})])


RULES = {
    "add": OnnxRule(lower_add),
    "scaled_add": OnnxRule(lower_scaled_add),
    "multiply": OnnxRule(lower_multiply),
    "concat": OnnxRule(lower_concat),
}
