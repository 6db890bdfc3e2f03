"""Inputs, zero padding, cropping and reshapes in ONNX. An input needs no node: it is a graph
input, made NCHW by the backend when the model takes NHWC."""

from __future__ import annotations

from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.reshape import Cropping2dAttrs, ZeroPad2dAttrs
from xgraph_onnx.rules.base import (
    Lowered,
    OnnxNode,
    OnnxRule,
    constant,
    inner,
    rank,
    to_channels_first,
    to_channels_last,
)


def lower_input(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    return Lowered([])


def lower_zero_pad2d(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    (top, bottom), (left, right) = attrs_of(node, ZeroPad2dAttrs).padding
    pads = constant(node, "pads")
    return Lowered(
        [OnnxNode("Pad", (inputs[0], pads), (node.name,))],
        {pads: [0, 0, top, left, 0, 0, bottom, right]},
    )


def lower_cropping2d(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    """A Slice of height and width (NCHW axes 2 and 3), between the input's known sizes."""
    (top, bottom), (left, right) = attrs_of(node, Cropping2dAttrs).cropping
    height, width = analysed.input_shape_of(node)[0][:2]
    starts, ends, axes = constant(node, "starts"), constant(node, "ends"), constant(node, "axes")
    return Lowered(
        [OnnxNode("Slice", (inputs[0], starts, ends, axes), (node.name,))],
        {starts: [top, left], ends: [height - bottom, width - right], axes: [2, 3]},
    )


def lower_reshape(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    """Keras reshapes in (H, W, C) order: channels last, Reshape (0 keeps the batch), and
    channels first again."""
    nodes = []
    source = inputs[0]
    before = rank(analysed, node)
    target = analysed.shapes[node.name]
    if before > 1:
        transpose, source = to_channels_last(node, source, before)
        nodes.append(transpose)
    shaped = inner(node, "reshaped") if len(target) > 1 else node.name
    nodes.append(OnnxNode("Reshape", (source, constant(node, "shape")), (shaped,)))
    if len(target) > 1:
        nodes.append(to_channels_first(node, shaped, len(target), node.name))
    return Lowered(nodes, {constant(node, "shape"): [0, *target]})


RULES = {
    "input": OnnxRule(lower_input),
    "zero_pad2d": OnnxRule(lower_zero_pad2d),
    "cropping2d": OnnxRule(lower_cropping2d),
    "reshape": OnnxRule(lower_reshape),
}
