"""Structural checks of a graph: op arity, cycles, and nodes that reach no output."""

from __future__ import annotations

import networkx as nx

from xgraph.errors import SpecError
from xgraph.graph import Graph


def check_arity(graph: Graph) -> None:
    for name in graph.digraph.nodes:
        node = graph[name]
        opdef = node.opdef
        count = len(node.inputs)
        if count < opdef.min_inputs or (opdef.max_inputs is not None and count > opdef.max_inputs):
            if opdef.max_inputs is None:
                wanted = f"at least {opdef.min_inputs}"
            elif opdef.min_inputs == opdef.max_inputs:
                wanted = str(opdef.min_inputs)
            else:
                wanted = f"{opdef.min_inputs} to {opdef.max_inputs}"
            raise SpecError(
                f"op '{node.op}' takes {wanted} input(s), node '{name}' has {count}",
                node.where("inputs"),
            )


def check_acyclic(graph: Graph) -> None:
    try:
        cycle = nx.find_cycle(graph.digraph)
    except nx.NetworkXNoCycle:
        return
    names = [source for source, _ in cycle]
    first = graph[names[0]]
    path = " -> ".join([*names, names[0]])
    raise SpecError(f"the graph has a cycle: {path}", first.where("inputs"))


def check_reaches_outputs(graph: Graph) -> None:
    """Every node must contribute to some output: a dangling branch is almost always a typo."""
    needed = set(graph.outputs)
    for name in graph.outputs:
        needed |= nx.ancestors(graph.digraph, name)
    for node in graph.nodes:
        if node.name not in needed:
            raise SpecError(
                f"node '{node.name}' does not reach any output",
                node.location,
                hint="connect it, remove it, or list it under 'outputs'",
            )


def check_graph(graph: Graph) -> None:
    check_arity(graph)
    check_acyclic(graph)
    check_reaches_outputs(graph)
