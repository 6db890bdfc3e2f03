"""Convolutions in ONNX: TensorFlow's 'same' padding as explicit (possibly asymmetric) pads;
a grouped conv2d and a depthwise convolution are grouped Convs; a separable one, two Convs."""

from __future__ import annotations

from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.conv import Conv2dAttrs, DepthwiseConv2dAttrs, SeparableConv2dAttrs, WindowAttrs
from xgraph_onnx.rules.activation import then_activate
from xgraph_onnx.rules.base import (
    CONV_KERNEL,
    DEPTHWISE_KERNEL,
    VECTOR,
    Lowered,
    OnnxNode,
    OnnxRule,
    channels,
    inner,
    onnx_pads,
    weight,
)


def _conv(
    analysed: AnalysedGraph,
    node: Node,
    a: WindowAttrs,
    source: str,
    kernel_param: str,
    output: str,
    group: int = 1,
    bias: bool = False,
) -> OnnxNode:
    inputs = [source, weight(node, kernel_param)]
    if bias:
        inputs.append(weight(node, "bias"))
    return OnnxNode(
        "Conv",
        tuple(inputs),
        (output,),
        {
            "kernel_shape": list(a.kernel_size),
            "strides": list(a.strides),
            "dilations": list(a.dilation_rate),
            "pads": onnx_pads(analysed, node, a.padding, a.kernel_size, a.strides, a.dilation_rate),
            "group": group,
        },
    )


def lower_conv2d(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    a = attrs_of(node, Conv2dAttrs)
    conv = _conv(
        analysed,
        node,
        a,
        inputs[0],
        "kernel",
        inner(node, "pre"),
        group=a.groups,
        bias=a.use_bias,
    )
    return then_activate(node, Lowered([conv]), a.activation)


def lower_depthwise_conv2d(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    a = attrs_of(node, DepthwiseConv2dAttrs)
    conv = _conv(
        analysed,
        node,
        a,
        inputs[0],
        "depthwise_kernel",
        inner(node, "pre"),
        group=channels(analysed, node),
        bias=a.use_bias,
    )
    return then_activate(node, Lowered([conv]), a.activation)


def lower_separable_conv2d(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    a = attrs_of(node, SeparableConv2dAttrs)
    depthwise = _conv(
        analysed,
        node,
        a,
        inputs[0],
        "depthwise_kernel",
        inner(node, "depthwise"),
        group=channels(analysed, node),
    )
    pointwise_inputs = [depthwise.outputs[0], weight(node, "pointwise_kernel")]
    if a.use_bias:
        pointwise_inputs.append(weight(node, "bias"))
    pointwise = OnnxNode(
        "Conv", tuple(pointwise_inputs), (inner(node, "pre"),), {"kernel_shape": [1, 1]}
    )
    return then_activate(node, Lowered([depthwise, pointwise]), a.activation)


RULES = {
    "conv2d": OnnxRule(lower_conv2d, {"kernel": CONV_KERNEL, "bias": VECTOR}),
    "depthwise_conv2d": OnnxRule(
        lower_depthwise_conv2d, {"depthwise_kernel": DEPTHWISE_KERNEL, "bias": VECTOR}
    ),
    "separable_conv2d": OnnxRule(
        lower_separable_conv2d,
        {"depthwise_kernel": DEPTHWISE_KERNEL, "pointwise_kernel": CONV_KERNEL, "bias": VECTOR},
    ),
}
