"""Preprocessing layers in ONNX, on NCHW values: Rescaling as Mul and Add, Normalization as
Sub and Div by max(sqrt(variance), 1e-7), as Keras computes them."""

from __future__ import annotations

from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.preprocess import NORMALIZATION_EPSILON, NormalizationAttrs, RescalingAttrs
from xgraph.weights.slots import kept
from xgraph_onnx.rules.base import (
    VECTOR,
    Lowered,
    OnnxNode,
    OnnxRule,
    channels,
    constant,
    inner,
    rank,
    weight,
)


def _broadcast(values: float | tuple[float, ...], dims: int) -> object:
    """A number as it is; per-channel values shaped (C, 1, 1) against (N, C, H, W)."""
    if not isinstance(values, tuple):
        return values
    nested: object = list(values)
    if dims > 1:
        nested = [[[v]] for v in values] if dims == 3 else [[v] for v in values]
    return nested


def lower_rescaling(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    a = attrs_of(node, RescalingAttrs)
    dims = rank(analysed, node)
    scale, offset, scaled = constant(node, "scale"), constant(node, "offset"), inner(node, "scaled")
    return Lowered(
        [
            OnnxNode("Mul", (inputs[0], scale), (scaled,)),
            OnnxNode("Add", (scaled, offset), (node.name,)),
        ],
        {scale: _broadcast(a.scale, dims), offset: _broadcast(a.offset, dims)},
    )


def lower_normalization(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    a = attrs_of(node, NormalizationAttrs)
    dims = rank(analysed, node)
    shape = [channels(analysed, node), *([1] * (dims - 1))]
    nodes: list[OnnxNode] = []
    constants: dict[str, object] = {constant(node, "epsilon"): NORMALIZATION_EPSILON}
    if a.mean is not None and a.variance is not None:
        mean, variance = constant(node, "mean"), constant(node, "variance")
        constants[mean] = _broadcast(a.mean, dims)
        constants[variance] = _broadcast(a.variance, dims)
    else:
        mean, variance = inner(node, "mean_nchw"), inner(node, "variance_nchw")
        constants[constant(node, "shape")] = shape
        for param, target in (("mean", mean), ("variance", variance)):
            source = (weight(node, param), constant(node, "shape"))
            nodes.append(OnnxNode("Reshape", source, (target,)))
    centred, spread, floored = inner(node, "centred"), inner(node, "spread"), inner(node, "floor")
    nodes += [
        OnnxNode("Sub", (inputs[0], mean), (centred,)),
        OnnxNode("Sqrt", (variance,), (spread,)),
        OnnxNode("Max", (spread, constant(node, "epsilon")), (floored,)),
        OnnxNode("Div", (centred, floored), (node.name,)),
    ]
    return Lowered(nodes, constants)


RULES = {
    "rescaling": OnnxRule(lower_rescaling),
    "normalization": OnnxRule(
        lower_normalization, {"mean": VECTOR, "variance": VECTOR, "count": kept(rank=0)}
    ),
}
