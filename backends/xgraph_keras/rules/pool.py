"""Pooling in Keras."""

from __future__ import annotations

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.pool import GlobalPoolAttrs, Pool2dAttrs
from xgraph_keras.rules.base import KerasRule, layer


def _pool(node: Node, cls: str) -> list[LayerCall]:
    a = attrs_of(node, Pool2dAttrs)
    return [layer(node, cls, pool_size=a.pool_size, strides=a.window_strides, padding=a.padding)]


def lower_max_pool2d(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return _pool(node, "MaxPooling2D")


def lower_avg_pool2d(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return _pool(node, "AveragePooling2D")


def lower_global_avg_pool(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    keepdims = attrs_of(node, GlobalPoolAttrs).keepdims
    return [layer(node, "GlobalAveragePooling2D", keepdims=keepdims)]


def lower_global_max_pool(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    keepdims = attrs_of(node, GlobalPoolAttrs).keepdims
    return [layer(node, "GlobalMaxPooling2D", keepdims=keepdims)]


RULES = {
    "max_pool2d": KerasRule(lower_max_pool2d),
    "avg_pool2d": KerasRule(lower_avg_pool2d),
    "global_avg_pool": KerasRule(lower_global_avg_pool),
    "global_max_pool": KerasRule(lower_global_max_pool),
}
