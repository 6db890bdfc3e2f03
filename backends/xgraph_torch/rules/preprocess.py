"""Preprocessing layers in torch: Rescaling, and Normalization with Keras's buffers."""

from __future__ import annotations

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.preprocess import NormalizationAttrs, RescalingAttrs
from xgraph.weights.slots import kept
from xgraph_torch.rules.base import LAYERS, TorchRule, channels


def lower_rescaling(analysed: AnalysedGraph, node: Node) -> LayerCall:
    a = attrs_of(node, RescalingAttrs)
    return LayerCall(LAYERS, "Rescaling", {"scale": a.scale, "offset": a.offset})


def lower_normalization(analysed: AnalysedGraph, node: Node) -> LayerCall:
    a = attrs_of(node, NormalizationAttrs)
    constants = {} if a.mean is None else {"mean": a.mean, "variance": a.variance}
    return LayerCall(
        LAYERS, "Normalization", {"num_features": channels(analysed, node), **constants}
    )


RULES = {
    "rescaling": TorchRule(lower_rescaling),
    "normalization": TorchRule(
        lower_normalization,
        {"mean": kept("mean", 1), "variance": kept("variance", 1), "count": kept("count", 0)},
    ),
}
