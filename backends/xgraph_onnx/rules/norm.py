"""Normalisation in ONNX: BatchNormalization (inference) with Keras's epsilon, a layer
without `scale` or `center` reading constant ones or zeros; LayerNormalization of the
channels, moved last for it (ONNX normalises from an axis to the end, NCHW's C, H and W
together); LayerScale as a Mul by gamma shaped (C, 1, 1)."""

from __future__ import annotations

from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.norm import BatchNormAttrs, LayerNormAttrs
from xgraph_onnx.rules.base import (
    VECTOR,
    Lowered,
    OnnxNode,
    OnnxRule,
    channels,
    constant,
    inner,
    rank,
    to_channels_first,
    to_channels_last,
    weight,
)


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
        {"epsilon": a.epsilon, "momentum": a.momentum},  # ONNX's momentum is Keras's
    )
    return Lowered([norm], constants)


def lower_layer_norm(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    a = attrs_of(node, LayerNormAttrs)
    size, dims = channels(analysed, node), rank(analysed, node)
    nodes, constants = [], {}
    source = inputs[0]
    if dims > 1:
        transpose, source = to_channels_last(node, source, dims)
        nodes.append(transpose)
    scale = weight(node, "gamma") if a.scale else constant(node, "ones")
    if not a.scale:
        constants[scale] = [1.0] * size
    bias = weight(node, "beta") if a.center else constant(node, "zeros")
    if not a.center:
        constants[bias] = [0.0] * size
    normalised = inner(node, "normalised") if dims > 1 else node.name
    attrs = {"axis": -1, "epsilon": a.epsilon}
    nodes.append(OnnxNode("LayerNormalization", (source, scale, bias), (normalised,), attrs))
    if dims > 1:
        nodes.append(to_channels_first(node, normalised, dims, node.name))
    return Lowered(nodes, constants)


def lower_layer_scale(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    dims = rank(analysed, node)
    shape, gamma = constant(node, "shape"), inner(node, "gamma_nchw")
    return Lowered(
        [
            OnnxNode("Reshape", (weight(node, "gamma"), shape), (gamma,)),
            OnnxNode("Mul", (inputs[0], gamma), (node.name,)),
        ],
        {shape: [channels(analysed, node), *([1] * (dims - 1))]},
    )


RULES = {
    "batch_norm": OnnxRule(
        lower_batch_norm,
        {"gamma": VECTOR, "beta": VECTOR, "moving_mean": VECTOR, "moving_variance": VECTOR},
    ),
    "layer_norm": OnnxRule(lower_layer_norm, {"gamma": VECTOR, "beta": VECTOR}),
    "layer_scale": OnnxRule(lower_layer_scale, {"gamma": VECTOR}),
}
