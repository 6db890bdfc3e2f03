"""Normalisation in torch: BatchNorm (Keras's epsilon kept, Keras's momentum m as torch's
1 - m), LayerNorm of the channels, and LayerScale."""

from __future__ import annotations

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.norm import BatchNormAttrs, LayerNormAttrs, LayerScaleAttrs
from xgraph_torch.rules.base import LAYERS, TorchRule, channels, vector


def lower_batch_norm(analysed: AnalysedGraph, node: Node) -> LayerCall:
    a = attrs_of(node, BatchNormAttrs)
    return LayerCall(
        LAYERS,
        "BatchNorm",
        {
            "num_features": channels(analysed, node),
            "eps": a.epsilon,
            "momentum": round(1.0 - a.momentum, 12),  # Keras's decay m is torch's 1 - m
            "center": a.center,
            "scale": a.scale,
        },
    )


def lower_layer_norm(analysed: AnalysedGraph, node: Node) -> LayerCall:
    a = attrs_of(node, LayerNormAttrs)
    return LayerCall(
        LAYERS,
        "LayerNorm",
        {
            "num_features": channels(analysed, node),
            "eps": a.epsilon,
            "center": a.center,
            "scale": a.scale,
        },
    )


def lower_layer_scale(analysed: AnalysedGraph, node: Node) -> LayerCall:
    a = attrs_of(node, LayerScaleAttrs)
    return LayerCall(
        LAYERS, "LayerScale", {"num_features": channels(analysed, node), "init_value": a.init_value}
    )


RULES = {
    "batch_norm": TorchRule(
        lower_batch_norm,
        {
            "gamma": vector("weight"),
            "beta": vector("bias"),
            "moving_mean": vector("running_mean"),
            "moving_variance": vector("running_var"),
        },
    ),
    "layer_norm": TorchRule(lower_layer_norm, {"gamma": vector("weight"), "beta": vector("bias")}),
    "layer_scale": TorchRule(lower_layer_scale, {"gamma": vector("gamma")}),
}
