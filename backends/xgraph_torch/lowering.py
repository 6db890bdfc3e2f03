"""One lowering per op: the torch module a graph node becomes, as a LayerCall description."""

from __future__ import annotations

from collections.abc import Callable

from xgraph.analysis import AnalysedGraph
from xgraph.graph import Node
from xgraph.lowering import LayerCall, lowering_table
from xgraph.ops.windows import resolve_padding

NN = "torch.nn"
LAYERS = "xgraph_torch.layers"

Lowering = Callable[[AnalysedGraph, Node], LayerCall | None]


def channels_first_dim(axis: int, rank: int) -> int:
    """A spec axis over (H, W, C) (batch excluded) as a dim of the (N, C, H, W) tensor."""
    axis %= rank
    return 1 if axis == rank - 1 else axis + 2


def _padding(
    analysed: AnalysedGraph,
    node: Node,
    kernel: tuple[int, int],
    strides: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
) -> dict:
    """torch's symmetric `padding` where it suffices, else an explicit (l, r, t, b) `pad`."""
    height, width = analysed.input_shape_of(node)[0][:2]
    (top, bottom), (left, right) = resolve_padding(
        node.attrs.padding, (height, width), kernel, strides, dilation
    )
    if top == bottom and left == right:
        return {"padding": (top, left)}
    return {"padding": (0, 0), "pad": (left, right, top, bottom)}


def _channels(analysed: AnalysedGraph, node: Node) -> int:
    return analysed.input_shape_of(node)[0][-1]


def lower_input(analysed: AnalysedGraph, node: Node) -> None:
    return None


def _convolution(analysed: AnalysedGraph, node: Node, cls: str, **kwargs: object) -> LayerCall:
    """The arguments every convolution shares: window, padding, bias, fused activation."""
    a = node.attrs
    return LayerCall(
        LAYERS,
        cls,
        {
            "in_channels": _channels(analysed, node),
            **kwargs,
            "kernel_size": a.kernel_size,
            "stride": a.strides,
            "dilation": a.dilation_rate,
            **_padding(analysed, node, a.kernel_size, a.strides, a.dilation_rate),
            "bias": a.use_bias,
            "activation": a.activation,
        },
    )


def lower_conv2d(analysed: AnalysedGraph, node: Node) -> LayerCall:
    return _convolution(analysed, node, "Conv2d", out_channels=node.attrs.filters)


def lower_depthwise_conv2d(analysed: AnalysedGraph, node: Node) -> LayerCall:
    channels = _channels(analysed, node)
    return _convolution(
        analysed,
        node,
        "Conv2d",
        out_channels=channels * node.attrs.depth_multiplier,
        groups=channels,
    )


def lower_separable_conv2d(analysed: AnalysedGraph, node: Node) -> LayerCall:
    a = node.attrs
    return _convolution(
        analysed,
        node,
        "SeparableConv2d",
        out_channels=a.filters,
        depth_multiplier=a.depth_multiplier,
    )


def lower_batch_norm(analysed: AnalysedGraph, node: Node) -> LayerCall:
    a = node.attrs
    shape = analysed.input_shape_of(node)[0]
    return LayerCall(
        LAYERS,
        "BatchNorm",
        {
            "num_features": shape[-1],
            "eps": a.epsilon,
            "momentum": round(1.0 - a.momentum, 12),  # Keras's decay m is torch's 1 - m
            "center": a.center,
            "scale": a.scale,
        },
    )


_ACTIVATION_CLASSES = {
    "linear": ("Identity", {}),
    "relu": ("ReLU", {}),
    "relu6": ("ReLU6", {}),
    "sigmoid": ("Sigmoid", {}),
    "hard_sigmoid": ("Hardsigmoid", {}),
    "tanh": ("Tanh", {}),
    "softmax": ("Softmax", {"dim": 1}),
    "swish": ("SiLU", {}),
}


def lower_activation(analysed: AnalysedGraph, node: Node) -> LayerCall:
    cls, kwargs = _ACTIVATION_CLASSES[node.attrs.activation]
    return LayerCall(NN, cls, kwargs)


def _pool(analysed: AnalysedGraph, node: Node) -> dict:
    a = node.attrs
    padding = _padding(analysed, node, a.pool_size, a.window_strides)
    return {"kernel_size": a.pool_size, "stride": a.window_strides, **padding}


def lower_max_pool2d(analysed: AnalysedGraph, node: Node) -> LayerCall:
    return LayerCall(LAYERS, "MaxPool2d", _pool(analysed, node))


def lower_avg_pool2d(analysed: AnalysedGraph, node: Node) -> LayerCall:
    kwargs = _pool(analysed, node)
    top, left = kwargs.pop("padding")
    if "pad" not in kwargs and (top or left):
        kwargs["pad"] = (left, left, top, top)
    return LayerCall(LAYERS, "AvgPool2d", kwargs)


def lower_global_avg_pool(analysed: AnalysedGraph, node: Node) -> LayerCall:
    return LayerCall(LAYERS, "GlobalPool", {"mode": "avg", "keepdims": node.attrs.keepdims})


def lower_global_max_pool(analysed: AnalysedGraph, node: Node) -> LayerCall:
    return LayerCall(LAYERS, "GlobalPool", {"mode": "max", "keepdims": node.attrs.keepdims})


def lower_dense(analysed: AnalysedGraph, node: Node) -> LayerCall:
    a = node.attrs
    return LayerCall(
        LAYERS,
        "Linear",
        {
            "in_features": _channels(analysed, node),
            "out_features": a.units,
            "bias": a.use_bias,
            "activation": a.activation,
        },
    )


def lower_flatten(analysed: AnalysedGraph, node: Node) -> LayerCall:
    return LayerCall(LAYERS, "FlattenChannelsLast")


def lower_dropout(analysed: AnalysedGraph, node: Node) -> LayerCall:
    return LayerCall(NN, "Dropout", {"p": node.attrs.rate})


def lower_add(analysed: AnalysedGraph, node: Node) -> LayerCall:
    return LayerCall(LAYERS, "Add")


def lower_concat(analysed: AnalysedGraph, node: Node) -> LayerCall:
    rank = len(analysed.input_shape_of(node)[0])
    return LayerCall(LAYERS, "Concat", {"dim": channels_first_dim(node.attrs.axis, rank)})


def lower_zero_pad2d(analysed: AnalysedGraph, node: Node) -> LayerCall:
    (top, bottom), (left, right) = node.attrs.padding
    return LayerCall(NN, "ZeroPad2d", {"padding": (left, right, top, bottom)})


LOWERINGS: dict[str, Lowering] = lowering_table(globals())
