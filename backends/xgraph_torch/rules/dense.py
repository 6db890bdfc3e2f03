"""Dense layers in torch, and flatten in (H, W, C) order so their weights mean what Keras's do."""

from __future__ import annotations

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.dense import DenseAttrs, DropoutAttrs, StochasticDepthAttrs
from xgraph_torch.rules.base import LAYERS, NN, TorchRule, channels, dense_kernel, vector


def lower_dense(analysed: AnalysedGraph, node: Node) -> LayerCall:
    a = attrs_of(node, DenseAttrs)
    return LayerCall(
        LAYERS,
        "Linear",
        {
            "in_features": channels(analysed, node),
            "out_features": a.units,
            "bias": a.use_bias,
            "activation": a.activation,
        },
    )


def lower_flatten(analysed: AnalysedGraph, node: Node) -> LayerCall:
    return LayerCall(LAYERS, "FlattenChannelsLast")


def lower_dropout(analysed: AnalysedGraph, node: Node) -> LayerCall:
    a = attrs_of(node, DropoutAttrs)
    if a.noise_shape is None:
        return LayerCall(NN, "Dropout", {"p": a.rate})
    noise = a.noise_shape  # (H, W, C) as (C, H, W)
    return LayerCall(LAYERS, "Dropout", {"p": a.rate, "noise_shape": (noise[-1], *noise[:-1])})


def lower_stochastic_depth(analysed: AnalysedGraph, node: Node) -> LayerCall:
    """Dropout of whole examples: one draw per example, shared by every other axis."""
    rank = len(analysed.input_shape_of(node)[0])
    return LayerCall(
        LAYERS,
        "Dropout",
        {"p": attrs_of(node, StochasticDepthAttrs).rate, "noise_shape": (1,) * rank},
    )


RULES = {
    "dense": TorchRule(lower_dense, {"kernel": dense_kernel("weight"), "bias": vector("bias")}),
    "flatten": TorchRule(lower_flatten),
    "dropout": TorchRule(lower_dropout),
    "stochastic_depth": TorchRule(lower_stochastic_depth),
}
