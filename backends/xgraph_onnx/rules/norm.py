"""BatchNorm in ONNX (inference): BatchNormalization with Keras's epsilon; a layer without
`scale` or `center` reads constant ones or zeros."""

from __future__ import annotations

from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.norm import BatchNormAttrs
from xgraph_onnx.rules.base import VECTOR, Lowered, OnnxNode, OnnxRule, channels, constant, weight


def lower_batch_norm(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    a = attrs_of(node, BatchNormAttrs)
    size = channels(analysed, node)
    constants = {}
    scale, bias = weight(node, "gamma"), weight(node, "beta")
    if not a.scale:
        scale = constant(node, "ones")
        constants[scale] = [1.0] * size
    if not a.center:
        bias = constant(node, "zeros")
        constants[bias] = [0.0] * size
    norm = OnnxNode(
        "BatchNormalization",
        (inputs[0], scale, bias, weight(node, "moving_mean"), weight(node, "moving_variance")),
        (node.name,),
        {"epsilon": a.epsilon},
    )
    return Lowered([norm], constants)


RULES = {
    "batch_norm": OnnxRule(
        lower_batch_norm,
        {"gamma": VECTOR, "beta": VECTOR, "moving_mean": VECTOR, "moving_variance": VECTOR},
    ),
}
