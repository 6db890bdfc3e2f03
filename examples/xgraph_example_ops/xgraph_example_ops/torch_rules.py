"""The plugin's ops in torch: what each node becomes, and where its weights live."""

from __future__ import annotations

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph_torch.rules.base import NN, TorchRule, channels, vector


def lower_channel_affine(analysed: AnalysedGraph, node: Node) -> LayerCall:
    return LayerCall(
        "xgraph_example_ops.torch_layers",
        "ChannelAffine",
        {"channels": channels(analysed, node), "offset": node.attrs.offset},
    )


def lower_mish(analysed: AnalysedGraph, node: Node) -> LayerCall:
    return LayerCall(NN, "Mish")


RULES = {
    "channel_affine": TorchRule(
        lower_channel_affine, {"scale": vector("weight"), "offset": vector("bias")}
    ),
    "mish": TorchRule(lower_mish),
}
