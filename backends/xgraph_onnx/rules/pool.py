"""Pooling in ONNX: explicit pads (max pooling never picks padding; average pooling leaves it
out of the count, as TensorFlow does)."""

from __future__ import annotations

from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.pool import GlobalPoolAttrs, Pool2dAttrs
from xgraph_onnx.rules.base import Lowered, OnnxNode, OnnxRule, inner, onnx_pads


def _pool(analysed: AnalysedGraph, node: Node, op_type: str, source: str, **extra: int) -> Lowered:
    a = attrs_of(node, Pool2dAttrs)
    attrs = {
        "kernel_shape": list(a.pool_size),
        "strides": list(a.window_strides),
        "pads": onnx_pads(analysed, node, a.padding, a.pool_size, a.window_strides),
        **extra,
    }
    return Lowered([OnnxNode(op_type, (source,), (node.name,), attrs)])


def lower_max_pool2d(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    return _pool(analysed, node, "MaxPool", inputs[0])


def lower_avg_pool2d(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    return _pool(analysed, node, "AveragePool", inputs[0], count_include_pad=0)


def _global(node: Node, op_type: str, source: str) -> Lowered:
    if attrs_of(node, GlobalPoolAttrs).keepdims:
        return Lowered([OnnxNode(op_type, (source,), (node.name,))])
    pooled = inner(node, "pooled")
    return Lowered(
        [
            OnnxNode(op_type, (source,), (pooled,)),
            OnnxNode("Flatten", (pooled,), (node.name,), {"axis": 1}),
        ]
    )


def lower_global_avg_pool(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    return _global(node, "GlobalAveragePool", inputs[0])


def lower_global_max_pool(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    return _global(node, "GlobalMaxPool", inputs[0])


RULES = {
    "max_pool2d": OnnxRule(lower_max_pool2d),
    "avg_pool2d": OnnxRule(lower_avg_pool2d),
    "global_avg_pool": OnnxRule(lower_global_avg_pool),
    "global_max_pool": OnnxRule(lower_global_max_pool),
}
