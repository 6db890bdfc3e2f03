"""The plugin's ops in ONNX: the nodes each graph node becomes (NCHW inside the model)."""

from __future__ import annotations

from xgraph_onnx.rules.base import (
    VECTOR,
    Lowered,
    OnnxNode,
    OnnxRule,
    constant,
    inner,
    rank,
    weight,
)

from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node


def lower_channel_affine(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    """x * scale (+ offset), the (C,) vectors made (C, 1, 1) for images so they broadcast
    over NCHW."""
    nodes: list[OnnxNode] = []
    constants = {}
    terms = ["scale", "offset"] if node.attrs.offset else ["scale"]
    values = {term: weight(node, term) for term in terms}
    if rank(analysed, node) == 3:
        constants[constant(node, "axes")] = [1, 2]
        for term in terms:
            shaped = inner(node, f"{term}_chw")
            nodes.append(OnnxNode("Unsqueeze", (values[term], constant(node, "axes")), (shaped,)))
            values[term] = shaped
    scaled = inner(node, "scaled") if node.attrs.offset else node.name
    nodes.append(OnnxNode("Mul", (inputs[0], values["scale"]), (scaled,)))
    if node.attrs.offset:
        nodes.append(OnnxNode("Add", (scaled, values["offset"]), (node.name,)))
    return Lowered(nodes, constants)


def lower_mish(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    """ONNX's own Mish operator (opset 18 and later; the backend exports opset 21)."""
    return Lowered([OnnxNode("Mish", inputs, (node.name,))])


RULES = {
    "channel_affine": OnnxRule(lower_channel_affine, {"scale": VECTOR, "offset": VECTOR}),
    "mish": OnnxRule(lower_mish),
}
