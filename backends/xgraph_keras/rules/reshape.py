"""Inputs, zero padding, cropping and reshapes in Keras."""

from __future__ import annotations

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.reshape import Cropping2dAttrs, InputAttrs, ReshapeAttrs, ZeroPad2dAttrs
from xgraph_keras.rules.base import KerasRule, layer


def lower_input(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    shape = attrs_of(node, InputAttrs).shape
    return [LayerCall("keras", "Input", {"shape": shape, "name": node.name})]


def lower_zero_pad2d(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [layer(node, "ZeroPadding2D", padding=attrs_of(node, ZeroPad2dAttrs).padding)]


def lower_cropping2d(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [layer(node, "Cropping2D", cropping=attrs_of(node, Cropping2dAttrs).cropping)]


def lower_reshape(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [layer(node, "Reshape", target_shape=attrs_of(node, ReshapeAttrs).target_shape)]


RULES = {
    "input": KerasRule(lower_input),
    "zero_pad2d": KerasRule(lower_zero_pad2d),
    "cropping2d": KerasRule(lower_cropping2d),
    "reshape": KerasRule(lower_reshape),
}
