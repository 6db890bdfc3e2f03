"""Normalisation in Keras: BatchNormalization and LayerNormalization, whose terms the spec
shares, and xgraph's LayerScale (xgraph_keras.layers: Keras has no built-in one)."""

from __future__ import annotations

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.norm import BatchNormAttrs, LayerNormAttrs, LayerScaleAttrs
from xgraph_keras.rules.base import OWN_LAYERS, KerasRule, layer, weights


def lower_batch_norm(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    a = attrs_of(node, BatchNormAttrs)
    return [
        layer(
            node,
            "BatchNormalization",
            axis=-1,
            momentum=a.momentum,
            epsilon=a.epsilon,
            center=a.center,
            scale=a.scale,
        )
    ]


def lower_layer_norm(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    a = attrs_of(node, LayerNormAttrs)
    return [
        layer(
            node, "LayerNormalization", axis=-1, epsilon=a.epsilon, center=a.center, scale=a.scale
        )
    ]


def lower_layer_scale(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    init_value = attrs_of(node, LayerScaleAttrs).init_value
    return [LayerCall(OWN_LAYERS, "LayerScale", {"init_value": init_value, "name": node.name})]


RULES = {
    "batch_norm": KerasRule(
        lower_batch_norm,
        "BatchNormalization",
        weights(("gamma", 1), ("beta", 1), ("moving_mean", 1), ("moving_variance", 1)),
    ),
    "layer_norm": KerasRule(
        lower_layer_norm, "LayerNormalization", weights(("gamma", 1), ("beta", 1))
    ),
    "layer_scale": KerasRule(lower_layer_scale, "LayerScale", weights(("gamma", 1))),
}
