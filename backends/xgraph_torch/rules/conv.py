"""Convolutions in torch: TensorFlow's 'same' padding as a `pad` where torch's symmetric
padding cannot say it, and a fused activation, as Keras's layers have. A grouped conv2d is
torch's grouped Conv2d; a depthwise one has a class of its own (`DepthwiseConv2d`), which
initialises with Keras's depthwise fans."""

from __future__ import annotations

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.conv import Conv2dAttrs, DepthwiseConv2dAttrs, SeparableConv2dAttrs, WindowAttrs
from xgraph_torch.rules.base import (
    LAYERS,
    TorchRule,
    channels,
    conv_kernel,
    depthwise_kernel,
    padding,
    vector,
)


def _convolution(
    analysed: AnalysedGraph, node: Node, a: WindowAttrs, cls: str, **kwargs: object
) -> LayerCall:
    """The arguments every convolution shares: window, padding, bias, fused activation."""
    return LayerCall(
        LAYERS,
        cls,
        {
            "in_channels": channels(analysed, node),
            **kwargs,
            "kernel_size": a.kernel_size,
            "stride": a.strides,
            "dilation": a.dilation_rate,
            **padding(analysed, node, a.padding, a.kernel_size, a.strides, a.dilation_rate),
            "bias": a.use_bias,
            "activation": a.activation,
        },
    )


def lower_conv2d(analysed: AnalysedGraph, node: Node) -> LayerCall:
    a = attrs_of(node, Conv2dAttrs)
    return _convolution(analysed, node, a, "Conv2d", out_channels=a.filters, groups=a.groups)


def lower_depthwise_conv2d(analysed: AnalysedGraph, node: Node) -> LayerCall:
    a = attrs_of(node, DepthwiseConv2dAttrs)
    groups = channels(analysed, node)
    return _convolution(
        analysed,
        node,
        a,
        "DepthwiseConv2d",
        out_channels=groups * a.depth_multiplier,
        groups=groups,
    )


def lower_separable_conv2d(analysed: AnalysedGraph, node: Node) -> LayerCall:
    a = attrs_of(node, SeparableConv2dAttrs)
    return _convolution(
        analysed,
        node,
        a,
        "SeparableConv2d",
        out_channels=a.filters,
        depth_multiplier=a.depth_multiplier,
    )


RULES = {
    "conv2d": TorchRule(lower_conv2d, {"kernel": conv_kernel("weight"), "bias": vector("bias")}),
    "depthwise_conv2d": TorchRule(
        lower_depthwise_conv2d,
        {"depthwise_kernel": depthwise_kernel("weight"), "bias": vector("bias")},
    ),
    "separable_conv2d": TorchRule(
        lower_separable_conv2d,
        {
            "depthwise_kernel": depthwise_kernel("depthwise.weight"),
            "pointwise_kernel": conv_kernel("pointwise.weight"),
            "bias": vector("pointwise.bias"),
        },
    ),
}
