"""Dense layers in ONNX (MatMul with Keras's (in, out) kernel, on the last axis of the
channels-last value), flatten in (H, W, C) order, and dropout and drop-path (nothing, in
inference)."""

from __future__ import annotations

from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.dense import DenseAttrs
from xgraph_onnx.rules.activation import then_activate
from xgraph_onnx.rules.base import (
    MATRIX,
    VECTOR,
    Lowered,
    OnnxNode,
    OnnxRule,
    inner,
    rank,
    to_channels_first,
    to_channels_last,
    weight,
)


def lower_dense(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    a = attrs_of(node, DenseAttrs)
    nodes = []
    source = inputs[0]
    dims = rank(analysed, node)
    if dims > 1:  # on the channels of an image: move them last, and back after
        transpose, source = to_channels_last(node, source, dims)
        nodes.append(transpose)
    # The last node writes `<node>/pre`, which the activation (or a rename) turns into the
    # node's own output.
    pre = inner(node, "pre")
    product = inner(node, "matmul") if a.use_bias or dims > 1 else pre
    nodes.append(OnnxNode("MatMul", (source, weight(node, "kernel")), (product,)))
    if a.use_bias:
        biased = inner(node, "biased") if dims > 1 else pre
        nodes.append(OnnxNode("Add", (product, weight(node, "bias")), (biased,)))
        product = biased
    if dims > 1:
        nodes.append(to_channels_first(node, product, dims, pre))
    return then_activate(node, Lowered(nodes), a.activation)


def lower_flatten(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    dims = rank(analysed, node)
    if dims == 1:
        return Lowered([OnnxNode("Identity", (inputs[0],), (node.name,))])
    transpose, source = to_channels_last(node, inputs[0], dims)
    return Lowered([transpose, OnnxNode("Flatten", (source,), (node.name,), {"axis": 1})])


def lower_dropout(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    return Lowered([OnnxNode("Identity", (inputs[0],), (node.name,))])


RULES = {
    "dense": OnnxRule(lower_dense, {"kernel": MATRIX, "bias": VECTOR}),
    "flatten": OnnxRule(lower_flatten),
    "dropout": OnnxRule(lower_dropout),
    "stochastic_depth": OnnxRule(lower_dropout),  # the identity in inference, as dropout
}
