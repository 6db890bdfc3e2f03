"""An inference pass: nodes that are the identity at inference time are removed.

Dropout only acts while training, and a linear activation never does anything; in an
inference build each is a layer call (and, in ONNX, a node) that copies or passes its input
on. Their readers read the node before them instead. A graph output is kept, since its
name is the model's interface.
"""

from __future__ import annotations

from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.activation import ActivationAttrs
from xgraph.ops.base import attrs_of
from xgraph.passes.rewrite import Rewritten, merge_into
from xgraph.weights.initial import Weights


def is_inference_identity(node: Node) -> bool:
    return node.op == "dropout" or (
        node.op == "activation" and attrs_of(node, ActivationAttrs).activation == "linear"
    )


def drop_identities(analysed: AnalysedGraph, weights: Weights) -> Rewritten:
    """The graph without dropout and linear activations (outside its outputs)."""
    graph = analysed.graph
    replaced = {
        node.name: node.inputs[0]
        for node in graph.nodes
        if is_inference_identity(node) and node.name not in graph.outputs
    }
    return Rewritten(merge_into(analysed, replaced, {}), dict(weights), replaced)
