"""Graph surgery shared by the inference passes: merge a node into the one before it.

Every inference pass ends the same way: some nodes are gone, each replaced by a node that
now computes its value (a folded BatchNorm by its convolution, a fused activation by its
layer, a dropout by its input), and some surviving nodes have new attributes. `merge_into`
rebuilds the graph once from that description and re-analyses it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from xgraph.ir.analysis import AnalysedGraph, analyse
from xgraph.ir.graph import Graph, Node
from xgraph.weights.initial import Weights


@dataclass(frozen=True)
class Rewritten:
    """A pass's result: the new graph and weights, and for each node it removed, the node
    that now computes that node's value (what per-node parity compares it with)."""

    analysed: AnalysedGraph
    weights: Weights
    replaced: Mapping[str, str]


def sole_reader(graph: Graph, producer: str, reader: str) -> bool:
    """Whether `reader` is the only node reading `producer`, and neither is a graph output
    (an output's name is the model's interface, so neither may disappear or change value)."""
    return (
        graph.consumers(producer) == [reader]
        and producer not in graph.outputs
        and reader not in graph.outputs
    )


def merge_into(
    analysed: AnalysedGraph, replaced: Mapping[str, str], changed: Mapping[str, Node]
) -> AnalysedGraph:
    """The graph without the `replaced` nodes (each maps to the node that now computes its
    value), with the `changed` nodes swapped in, re-analysed."""

    def survivor(name: str) -> str:
        while name in replaced:
            name = replaced[name]
        return name

    graph = analysed.graph
    nodes = []
    for node in graph.nodes:
        if node.name in replaced:
            continue
        node = changed.get(node.name, node)
        inputs = tuple(survivor(source) for source in node.inputs)
        if inputs != node.inputs:
            node = dataclasses.replace(node, inputs=inputs)
        nodes.append(node)
    merged = Graph(graph.name, nodes, graph.inputs, graph.outputs, graph.initializer)
    return analyse(merged, analysed.params, sections=analysed.sections)
