"""Pooling in torch: TensorFlow's 'same' padding as a `pad` where torch's symmetric padding
cannot say it, -inf for max pooling, and average pooling that leaves padding out of the
count, as TensorFlow does."""

from __future__ import annotations

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.pool import GlobalPoolAttrs, Pool2dAttrs
from xgraph_torch.rules.base import LAYERS, TorchRule, padding


def _pool(analysed: AnalysedGraph, node: Node) -> dict[str, object]:
    a = attrs_of(node, Pool2dAttrs)
    return {
        "kernel_size": a.pool_size,
        "stride": a.window_strides,
        **padding(analysed, node, a.padding, a.pool_size, a.window_strides),
    }


def lower_max_pool2d(analysed: AnalysedGraph, node: Node) -> LayerCall:
    return LayerCall(LAYERS, "MaxPool2d", _pool(analysed, node))


def lower_avg_pool2d(analysed: AnalysedGraph, node: Node) -> LayerCall:
    """torch's symmetric `padding` would count in the averages: every padding is a `pad`."""
    kwargs = _pool(analysed, node)
    padded = kwargs.pop("padding")
    assert isinstance(padded, tuple)  # padding() gives (top, left) amounts
    top, left = padded
    if "pad" not in kwargs and (top or left):
        kwargs["pad"] = (left, left, top, top)
    return LayerCall(LAYERS, "AvgPool2d", kwargs)


def lower_global_avg_pool(analysed: AnalysedGraph, node: Node) -> LayerCall:
    keepdims = attrs_of(node, GlobalPoolAttrs).keepdims
    return LayerCall(LAYERS, "GlobalPool", {"mode": "avg", "keepdims": keepdims})


def lower_global_max_pool(analysed: AnalysedGraph, node: Node) -> LayerCall:
    keepdims = attrs_of(node, GlobalPoolAttrs).keepdims
    return LayerCall(LAYERS, "GlobalPool", {"mode": "max", "keepdims": keepdims})


RULES = {
    "max_pool2d": TorchRule(lower_max_pool2d),
    "avg_pool2d": TorchRule(lower_avg_pool2d),
    "global_avg_pool": TorchRule(lower_global_avg_pool),
    "global_max_pool": TorchRule(lower_global_max_pool),
}
