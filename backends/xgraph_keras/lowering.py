"""One lowering per op: the built-in Keras layer(s) a graph node becomes.

The node's own layer comes last and carries the node's name; an op Keras cannot express in
one layer (a convolution with explicit padding amounts) is preceded by `<name>_pad`.
"""

from __future__ import annotations

from collections.abc import Callable

from xgraph.analysis import AnalysedGraph
from xgraph.graph import Node
from xgraph.lowering import LayerCall, lowering_table

LAYERS = "keras.layers"

Lowering = Callable[[AnalysedGraph, Node], list[LayerCall]]


def _layer(node: Node, cls: str, **kwargs: object) -> LayerCall:
    return LayerCall(LAYERS, cls, {**kwargs, "name": node.name})


def _windowed(node: Node, cls: str, **kwargs: object) -> list[LayerCall]:
    """A convolution; explicit padding amounts become a ZeroPadding2D before a 'valid' conv."""
    a = node.attrs
    common = {
        "kernel_size": a.kernel_size,
        "strides": a.strides,
        "dilation_rate": a.dilation_rate,
        "use_bias": a.use_bias,
        "activation": a.activation,
        **kwargs,
    }
    if isinstance(a.padding, str):
        return [_layer(node, cls, padding=a.padding, **common)]
    pad = LayerCall(LAYERS, "ZeroPadding2D", {"padding": a.padding, "name": f"{node.name}_pad"})
    return [pad, _layer(node, cls, padding="valid", **common)]


def lower_input(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [LayerCall("keras", "Input", {"shape": node.attrs.shape, "name": node.name})]


def lower_conv2d(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return _windowed(node, "Conv2D", filters=node.attrs.filters)


def lower_depthwise_conv2d(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return _windowed(node, "DepthwiseConv2D", depth_multiplier=node.attrs.depth_multiplier)


def lower_separable_conv2d(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    a = node.attrs
    return _windowed(
        node, "SeparableConv2D", filters=a.filters, depth_multiplier=a.depth_multiplier
    )


def lower_batch_norm(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    a = node.attrs
    return [
        _layer(
            node,
            "BatchNormalization",
            axis=-1,
            momentum=a.momentum,
            epsilon=a.epsilon,
            center=a.center,
            scale=a.scale,
        )
    ]


def lower_activation(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [_layer(node, "Activation", activation=node.attrs.activation)]


def _pool(node: Node, cls: str) -> list[LayerCall]:
    a = node.attrs
    return [_layer(node, cls, pool_size=a.pool_size, strides=a.window_strides, padding=a.padding)]


def lower_max_pool2d(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return _pool(node, "MaxPooling2D")


def lower_avg_pool2d(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return _pool(node, "AveragePooling2D")


def lower_global_avg_pool(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [_layer(node, "GlobalAveragePooling2D", keepdims=node.attrs.keepdims)]


def lower_global_max_pool(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [_layer(node, "GlobalMaxPooling2D", keepdims=node.attrs.keepdims)]


def lower_dense(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    a = node.attrs
    return [_layer(node, "Dense", units=a.units, activation=a.activation, use_bias=a.use_bias)]


def lower_flatten(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [_layer(node, "Flatten")]


def lower_dropout(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [_layer(node, "Dropout", rate=node.attrs.rate)]


def lower_add(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [_layer(node, "Add")]


def lower_concat(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    axis = node.attrs.axis
    return [_layer(node, "Concatenate", axis=axis if axis < 0 else axis + 1)]


def lower_zero_pad2d(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [_layer(node, "ZeroPadding2D", padding=node.attrs.padding)]


LOWERINGS: dict[str, Lowering] = lowering_table(globals())
