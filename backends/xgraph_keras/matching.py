"""Matching the weight groups found in a file to the nodes of a graph.

By name first; then, for layers Keras named automatically (`conv2d_3`) or keyed by position
(Keras 3 `.weights.h5`), by structure: the op kind and the weight shapes, in Keras's layer
order. Every shape is checked, and anything left over on either side fails the whole load,
so nothing loads partially or silently wrong. The file's tensors are lazy (h5py datasets):
shapes and types are checked for the whole file before any tensor is read.

Automatic names are never matched by name, even to a node of the same name: Keras numbers
them per session, Keras 2 from 1 and Keras 3 from 0, so a file's `conv2d_1` may be the
graph's `conv2d` (the first convolution) and the graph's `conv2d_1` another layer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from xgraph.ir.analysis import AnalysedGraph
from xgraph.ops.base import ParamSpec, format_shape
from xgraph.weights.checks import ReadOptions, WeightFileError, as_float32, check_dtypes
from xgraph.weights.initial import Weights, weight_key
from xgraph_keras.layer_order import keras_layer_order
from xgraph_keras.nested import place_nested
from xgraph_keras.rules.base import class_key, keras_rules


class Tensor(Protocol):
    """A tensor whose shape and type are known before its data is read: an h5py dataset
    (read by `np.asarray`), or an array."""

    shape: tuple[int, ...]
    ndim: int
    dtype: Any


@dataclass
class FileLayer:
    """One layer's weights as a file holds them, in the file's order (Keras's model.layers)."""

    kind: str  # the xgraph op it must be: conv2d, separable_conv2d, batch_norm, ...
    arrays: list[Tensor]
    name: str | None = None  # None: the file keys layers by position, not by name
    where: str = ""  # how the file names it, for reports
    # The Keras class the file records for it (DepthwiseConv2D); None where the file records
    # none and `kind` was told from its weights' names, which reports then show.
    layer_class: str | None = None
    weight_names: tuple[str, ...] = ()
    # The position of the nested model holding it, among the file's nested models (a
    # `.weights.h5`'s `layers/sequential_1/layers/...`); None for the model's own layers.
    nested: int | None = None


def _named_by_keras(layer: FileLayer) -> bool:
    """Whether the layer's name is one Keras gave it automatically, a class and a number."""
    rule = keras_rules().get(layer.kind)
    if not (layer.name and rule and rule.layer_class):
        return False
    return bool(re.fullmatch(rf"{class_key(rule.layer_class)}(_\d+)?", layer.name))


def _shapes(arrays: list[Tensor]) -> str:
    return ", ".join(format_shape(a.shape) for a in arrays) or "no weights"


def _misfit(op: str, params: Sequence[ParamSpec], layer: FileLayer) -> str | None:
    """What differs between a node and the file's layer paired with it: the layer's class,
    its weights' names (a file that records no class) or the shapes; None if nothing."""
    if layer.kind != op:
        return _other_class(op, layer)
    wanted = [param.shape for param in params]
    if wanted == [tuple(array.shape) for array in layer.arrays]:
        return None
    shapes = ", ".join(format_shape(shape) for shape in wanted)
    return f"expected {shapes}; the file's {layer.where or layer.kind} has {_shapes(layer.arrays)}"


def _other_class(op: str, layer: FileLayer) -> str:
    """Why the layer is not the node's kind: the class the file records, or else the weights'
    names xgraph told its kind from (equal shapes would explain nothing)."""
    rules = keras_rules()
    ours, theirs = rules[op], rules[layer.kind]
    where = layer.where or layer.kind
    if layer.layer_class:
        return f"the node is a Keras {ours.layer_class}, the file's {where} a {layer.layer_class}"
    return (
        f"the file records no class for its {where}, whose weights "
        f"({', '.join(layer.weight_names)}) are a {theirs.layer_class}'s, not a "
        f"{ours.layer_class}'s ({', '.join(ours.weights)})"
    )


def _tensor_name(layer: FileLayer, index: int, tensor: Tensor) -> str:
    """How the file names one tensor: its HDF5 path, else its layer and position."""
    name = getattr(tensor, "name", None)
    return name if isinstance(name, str) else f"{layer.where or layer.kind} variable {index}"


def match_layers(
    analysed: AnalysedGraph,
    layers: list[FileLayer],
    source: str,
    options: ReadOptions = ReadOptions(),  # noqa: B008 - frozen, shared safely
) -> Weights:
    """Canonical weights for every parameterised node of `analysed`, or a WeightFileError
    report; every shape and type is checked before any tensor is read."""
    expected = {
        node.name: analysed.counts[node.name].params
        for node in analysed.graph.nodes
        if analysed.counts[node.name].params
    }
    order = [name for name in keras_layer_order(analysed) if name in expected]
    assigned: dict[str, FileLayer] = {}
    positional: list[FileLayer] = []
    for layer in layers:
        if layer.name in expected and layer.name not in assigned and not _named_by_keras(layer):
            assigned[layer.name] = layer
        else:
            positional.append(layer)
    remaining = [name for name in order if name not in assigned]
    if any(layer.nested is not None for layer in positional):
        assigned.update(_placed(analysed, remaining, positional, expected, source))
        positional, remaining = [], []
    for kind in dict.fromkeys(
        [analysed.graph[n].op for n in remaining] + [la.kind for la in positional]
    ):
        nodes = [n for n in remaining if analysed.graph[n].op == kind]
        found = [la for la in positional if la.kind == kind]
        if len(nodes) != len(found):
            raise _mismatch_report(analysed, source, kind, nodes, found)
        assigned.update(zip(nodes, found, strict=True))

    for name in order:
        misfit = _misfit(analysed.graph[name].op, expected[name], assigned[name])
        if misfit:
            raise WeightFileError(
                source,
                f"weights for node '{name}' ({analysed.graph[name].op}) do not fit: {misfit}",
                hint="is the file from this architecture, with the same --set parameters?",
            )
    check_dtypes(
        {
            _tensor_name(assigned[name], i, tensor): np.dtype(tensor.dtype).name
            for name in order
            for i, tensor in enumerate(assigned[name].arrays)
        },
        source,
        options,
        [
            _tensor_name(assigned[name], i, tensor)
            for name in order
            for i, (param, tensor) in enumerate(
                zip(expected[name], assigned[name].arrays, strict=True)
            )
            if param.integer
        ],
    )
    weights: Weights = {}
    for name in order:
        for param, tensor in zip(expected[name], assigned[name].arrays, strict=True):
            weights[weight_key(name, param.name)] = as_float32(np.asarray(tensor))
    return weights


def _placed(
    analysed: AnalysedGraph,
    nodes: list[str],
    layers: list[FileLayer],
    expected: dict[str, tuple[ParamSpec, ...]],
    source: str,
) -> dict[str, FileLayer]:
    """The nodes left paired with a file's layers where some sit in nested models, unnamed
    (xgraph_keras.nested)."""
    count = 1 + max(layer.nested for layer in layers if layer.nested is not None)
    nested = [[layer for layer in layers if layer.nested == index] for index in range(count)]
    top = [layer for layer in layers if layer.nested is None]
    graph = analysed.graph
    return place_nested(
        nodes,
        nested,
        top,
        lambda name: graph[name].op,
        lambda name, layer: _misfit(graph[name].op, expected[name], layer) is None,
        source,
    )


Signature = tuple[tuple[int, ...], ...]

# Aligning n nodes with m weight groups costs n * m steps; beyond this, reports list both
# sides as they are.
_ALIGN_LIMIT = 1_000_000


def _unpaired(left: list[Signature], right: list[Signature]) -> tuple[list[int], list[int]]:
    """Indices on each side left over by the longest in-order pairing of equal shapes (a
    longest common subsequence): what a file lacks, or has too many of, by structure."""
    rows, cols = len(left), len(right)
    if rows * cols > _ALIGN_LIMIT:
        return list(range(rows)), list(range(cols))
    # best[i][j]: the most pairs left[i:] and right[j:] can make
    best = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(rows - 1, -1, -1):
        for j in range(cols - 1, -1, -1):
            best[i][j] = (
                best[i + 1][j + 1] + 1
                if left[i] == right[j]
                else max(best[i + 1][j], best[i][j + 1])
            )
    lone_left: list[int] = []
    lone_right: list[int] = []
    i = j = 0
    while i < rows and j < cols:
        if left[i] == right[j]:
            i, j = i + 1, j + 1
        elif best[i + 1][j] >= best[i][j + 1]:
            lone_left.append(i)
            i += 1
        else:
            lone_right.append(j)
            j += 1
    return lone_left + list(range(i, rows)), lone_right + list(range(j, cols))


def _mismatch_report(
    analysed: AnalysedGraph, source: str, kind: str, nodes: list[str], found: list[FileLayer]
) -> WeightFileError:
    """The nodes and weight groups that pair with nothing, when their counts differ."""
    wanted = [tuple(p.shape for p in analysed.counts[name].params) for name in nodes]
    have = [tuple(tuple(a.shape) for a in layer.arrays) for layer in found]
    lone_nodes, lone_layers = _unpaired(wanted, have)
    notes = []
    for i in lone_nodes[:8]:
        note = f"node without weights: {nodes[i]} ({kind}) expects {_shapes_of(wanted[i])}"
        alike = [name for j, name in enumerate(nodes) if j != i and wanted[j] == wanted[i]]
        if alike:
            more = ", ..." if len(alike) > 3 else ""
            note += f" (or another node of these shapes: {', '.join(alike[:3])}{more})"
        notes.append(note)
    for j in lone_layers[:8]:
        notes.append(f"weights without a node: {found[j].where or kind} has {_shapes_of(have[j])}")
    hidden = max(len(lone_nodes) - 8, 0) + max(len(lone_layers) - 8, 0)
    if hidden:
        notes.append(f"... and {hidden} more")
    return WeightFileError(
        source,
        f"cannot match the file's {kind} weights to the graph: {len(nodes)} "
        f"{kind} node(s) left, {len(found)} {kind} weight group(s) left",
        hint="is the file from this architecture, with the same --set parameters?",
        notes=notes,
    )


def _shapes_of(signature: Signature) -> str:
    return ", ".join(format_shape(shape) for shape in signature) or "no weights"
