"""Convolutions in Keras; explicit padding amounts, which Keras's convolutions do not take,
become a ZeroPadding2D named `<node>_pad` before a 'valid' convolution."""

from __future__ import annotations

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.conv import Conv2dAttrs, DepthwiseConv2dAttrs, SeparableConv2dAttrs, WindowAttrs
from xgraph_keras.rules.activation import keras_activation
from xgraph_keras.rules.base import LAYERS, KerasRule, layer, weights


def _windowed(node: Node, a: WindowAttrs, cls: str, **kwargs: object) -> list[LayerCall]:
    common = {
        "kernel_size": a.kernel_size,
        "strides": a.strides,
        "dilation_rate": a.dilation_rate,
        "use_bias": a.use_bias,
        "activation": keras_activation(a.activation),
        **kwargs,
    }
    if isinstance(a.padding, str):
        return [layer(node, cls, padding=a.padding, **common)]
    pad = LayerCall(LAYERS, "ZeroPadding2D", {"padding": a.padding, "name": f"{node.name}_pad"})
    return [pad, layer(node, cls, padding="valid", **common)]


def lower_conv2d(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    a = attrs_of(node, Conv2dAttrs)
    return _windowed(node, a, "Conv2D", filters=a.filters, groups=a.groups)


def lower_depthwise_conv2d(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    a = attrs_of(node, DepthwiseConv2dAttrs)
    return _windowed(node, a, "DepthwiseConv2D", depth_multiplier=a.depth_multiplier)


def lower_separable_conv2d(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    a = attrs_of(node, SeparableConv2dAttrs)
    return _windowed(
        node, a, "SeparableConv2D", filters=a.filters, depth_multiplier=a.depth_multiplier
    )


RULES = {
    "conv2d": KerasRule(lower_conv2d, "Conv2D", weights(("kernel", 4), ("bias", 1))),
    "depthwise_conv2d": KerasRule(
        lower_depthwise_conv2d, "DepthwiseConv2D", weights(("depthwise_kernel", 4), ("bias", 1))
    ),
    "separable_conv2d": KerasRule(
        lower_separable_conv2d,
        "SeparableConv2D",
        weights(("depthwise_kernel", 4), ("pointwise_kernel", 4), ("bias", 1)),
    ),
}
