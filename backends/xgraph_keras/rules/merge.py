"""Joining branches in Keras; the spec's axis excludes the batch, Keras's includes it.

A scaled residual sum is Keras's own layers, so a saved model needs nothing of xgraph to
load: a Rescaling of the branch (`<node>_scale`) and the node's Add, which compute
inputs[0] + inputs[1] * scale exactly as InceptionResNetV2's CustomScaleLayer does (the
Rescaling's offset, 0, changes no value)."""

from __future__ import annotations

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.merge import ConcatAttrs, ScaledAddAttrs
from xgraph_keras.rules.base import LAYERS, KerasRule, layer


def lower_add(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [layer(node, "Add")]


def lower_scaled_add(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    scale = attrs_of(node, ScaledAddAttrs).scale
    rescale = LayerCall(LAYERS, "Rescaling", {"scale": scale, "name": f"{node.name}_scale"})
    return [rescale, layer(node, "Add")]


def lower_multiply(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [layer(node, "Multiply")]


def lower_concat(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    axis = attrs_of(node, ConcatAttrs).axis
    return [layer(node, "Concatenate", axis=axis if axis < 0 else axis + 1)]


RULES = {
    "add": KerasRule(lower_add),
    "scaled_add": KerasRule(lower_scaled_add, branch=1),
    "multiply": KerasRule(lower_multiply),
    "concat": KerasRule(lower_concat),
}
