"""Inputs, zero padding, cropping and reshapes in torch.

A reshape reads and writes values in (H, W, C) order; a tensor whose axes other than the
channels are all 1 (or whose channels are 1) holds them in that order in NCHW too, so those
reshapes need no transpose and lower to plain torch."""

from __future__ import annotations

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import Shape, attrs_of
from xgraph.ops.reshape import Cropping2dAttrs, ZeroPad2dAttrs
from xgraph_torch.rules.base import LAYERS, NN, TorchRule


def lower_input(analysed: AnalysedGraph, node: Node) -> None:
    return None


def lower_zero_pad2d(analysed: AnalysedGraph, node: Node) -> LayerCall:
    (top, bottom), (left, right) = attrs_of(node, ZeroPad2dAttrs).padding
    return LayerCall(NN, "ZeroPad2d", {"padding": (left, right, top, bottom)})


def lower_cropping2d(analysed: AnalysedGraph, node: Node) -> LayerCall:
    return LayerCall(LAYERS, "Cropping2d", {"cropping": attrs_of(node, Cropping2dAttrs).cropping})


def _same_order_in_nchw(shape: Shape) -> bool:
    """Whether (H, W, C) order and torch's (C, H, W) order of these values coincide."""
    return len(shape) == 1 or shape[-1] == 1 or all(d == 1 for d in shape[:-1])


def _channels_first(shape: Shape) -> Shape:
    return shape if len(shape) == 1 else (shape[-1], *shape[:-1])


def lower_reshape(analysed: AnalysedGraph, node: Node) -> LayerCall:
    source, target = analysed.input_shape_of(node)[0], analysed.shapes[node.name]
    if len(target) == 1:
        return LayerCall(LAYERS, "FlattenChannelsLast")
    if len(source) == 1 and _same_order_in_nchw(target):
        return LayerCall(NN, "Unflatten", {"dim": 1, "unflattened_size": _channels_first(target)})
    return LayerCall(LAYERS, "ReshapeChannelsLast", {"shape": target})


RULES = {
    "input": TorchRule(lower_input),
    "zero_pad2d": TorchRule(lower_zero_pad2d),
    "cropping2d": TorchRule(lower_cropping2d),
    "reshape": TorchRule(lower_reshape),
}
