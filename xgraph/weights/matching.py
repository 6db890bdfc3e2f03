"""Matching the weight groups found in a file to the nodes of a graph.

By name first; then, for layers Keras named automatically (`conv2d_3`) or keyed by position
(Keras 3 `.weights.h5`), by structure: the op kind and the weight shapes, in Keras's layer
order. Every shape is checked, and anything left over on either side fails the whole load,
so nothing loads partially or silently wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xgraph.analysis import AnalysedGraph
from xgraph.errors import SpecError
from xgraph.init import Weights, weight_key
from xgraph.ops.base import format_shape
from xgraph.weights.keras_order import keras_layer_order


@dataclass
class FileLayer:
    """One layer's weights as a file holds them, in the file's order (Keras's model.layers)."""

    kind: str  # the xgraph op it must be: conv2d, separable_conv2d, batch_norm, ...
    arrays: list[np.ndarray]
    name: str | None = None  # None: the file keys layers by position, not by name
    where: str = ""  # how the file names it, for reports
    names: list[str] = field(default_factory=list)  # the weights' own names, if the file has them


def _shapes(arrays: list[np.ndarray]) -> str:
    return ", ".join(format_shape(a.shape) for a in arrays) or "no weights"


def match_layers(analysed: AnalysedGraph, layers: list[FileLayer], source: str) -> Weights:
    """Canonical weights for every parameterised node of `analysed`, or a SpecError report."""
    expected = {
        node.name: analysed.counts[node.name].params
        for node in analysed.graph.nodes
        if analysed.counts[node.name].params
    }
    order = [name for name in keras_layer_order(analysed.graph) if name in expected]
    assigned: dict[str, FileLayer] = {}
    positional: list[FileLayer] = []
    for layer in layers:
        if layer.name in expected and layer.name not in assigned:
            assigned[layer.name] = layer
        else:
            positional.append(layer)
    remaining = [name for name in order if name not in assigned]
    for kind in dict.fromkeys(
        [analysed.graph[n].op for n in remaining] + [la.kind for la in positional]
    ):
        nodes = [n for n in remaining if analysed.graph[n].op == kind]
        found = [la for la in positional if la.kind == kind]
        if len(nodes) != len(found):
            raise _mismatch_report(analysed, source, kind, nodes, found)
        assigned.update(zip(nodes, found, strict=True))

    weights: Weights = {}
    for name in order:
        layer = assigned[name]
        params = expected[name]
        node = analysed.graph[name]
        wanted = [p.shape for p in params]
        got = [tuple(a.shape) for a in layer.arrays]
        if layer.kind != node.op or wanted != got:
            raise SpecError(
                f"{source}: weights for node '{name}' ({node.op}) do not fit: expected "
                f"{_shapes([np.empty(s) for s in wanted])}; the file's {layer.where or layer.kind} "
                f"({layer.kind}) has {_shapes(layer.arrays)}",
                hint="is the file from this architecture, with the same --set parameters?",
            )
        for param, array in zip(params, layer.arrays, strict=True):
            weights[weight_key(name, param.name)] = np.asarray(array, dtype=np.float32)
    return weights


def _mismatch_report(
    analysed: AnalysedGraph, source: str, kind: str, nodes: list[str], found: list[FileLayer]
) -> SpecError:
    notes = []
    for name in nodes[:8]:
        shapes = _shapes([np.empty(p.shape) for p in analysed.counts[name].params])
        notes.append(f"node without weights: {name} ({kind}) expects {shapes}")
    for layer in found[:8]:
        notes.append(f"weights without a node: {layer.where or kind} has {_shapes(layer.arrays)}")
    hidden = max(len(nodes) - 8, 0) + max(len(found) - 8, 0)
    if hidden:
        notes.append(f"... and {hidden} more")
    return SpecError(
        f"{source}: cannot match the file's {kind} weights to the graph: {len(nodes)} "
        f"{kind} node(s) left, {len(found)} {kind} weight group(s) left",
        hint="is the file from this architecture, with the same --set parameters?",
        notes=notes,
    )
