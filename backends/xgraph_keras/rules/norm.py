"""BatchNorm in Keras: the spec's terms are Keras's own."""

from __future__ import annotations

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.norm import BatchNormAttrs
from xgraph_keras.rules.base import KerasRule, layer, weights


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


RULES = {
    "batch_norm": KerasRule(
        lower_batch_norm,
        "BatchNormalization",
        weights(("gamma", 1), ("beta", 1), ("moving_mean", 1), ("moving_variance", 1)),
    ),
}
