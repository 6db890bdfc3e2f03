"""The torch rule of `copy`; there is no keras rule."""

from __future__ import annotations

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph_torch.rules.base import NN, TorchRule


def lower_copy(analysed: AnalysedGraph, node: Node) -> LayerCall:
    return LayerCall(NN, "Identity")


RULES = {"copy": TorchRule(lower_copy)}
