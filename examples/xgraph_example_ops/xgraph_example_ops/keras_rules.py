"""The plugin's ops in Keras: the layers each node becomes and, for `channel_affine`, the
layer class and weights that Keras's files record (read without TensorFlow)."""

from __future__ import annotations

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph_keras.rules.base import KerasRule, layer, weights


def lower_channel_affine(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [
        LayerCall(
            "xgraph_example_ops.keras_layers",
            "ChannelAffine",
            {"offset": node.attrs.offset, "name": node.name},
        )
    ]


def lower_mish(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [layer(node, "Activation", activation="mish")]


RULES = {
    "channel_affine": KerasRule(
        lower_channel_affine, "ChannelAffine", weights(("scale", 1), ("offset", 1))
    ),
    "mish": KerasRule(lower_mish),
}
