"""Preprocessing layers in Keras: the spec's Rescaling and Normalization are Keras's own."""

from __future__ import annotations

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.preprocess import NormalizationAttrs, RescalingAttrs
from xgraph_keras.rules.base import KerasRule, layer, weights


def _plain(value: float | tuple[float, ...] | None) -> float | list[float] | None:
    return list(value) if isinstance(value, tuple) else value


def lower_rescaling(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    a = attrs_of(node, RescalingAttrs)
    return [layer(node, "Rescaling", scale=_plain(a.scale), offset=_plain(a.offset))]


def lower_normalization(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    a = attrs_of(node, NormalizationAttrs)
    constants = {} if a.mean is None else {"mean": _plain(a.mean), "variance": _plain(a.variance)}
    return [layer(node, "Normalization", axis=-1, **constants)]


RULES = {
    "rescaling": KerasRule(lower_rescaling),
    "normalization": KerasRule(
        lower_normalization, "Normalization", weights(("mean", 1), ("variance", 1), ("count", 0))
    ),
}
