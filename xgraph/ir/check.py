"""Structural checks of a graph: op arity, cycles, and nodes that reach no output."""

from __future__ import annotations

from xgraph.errors import SpecError
from xgraph.ir.graph import Graph, Node


def block_notes(node: Node) -> list[str]:
    """Which block instance made `node`: its location is inside the block, shared by all."""
    return [f"in block instance '{'/'.join(node.block)}'"] if node.block else []


def check_arity(graph: Graph) -> None:
    for name in graph.names:
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
                notes=block_notes(node),
            )


def check_acyclic(graph: Graph) -> None:
    """A cycle is reported where it closes: at the node that takes input from a node written
    after it (or from itself), since that reference is the one that is most likely wrong."""
    try:
        graph.nodes  # noqa: B018 - sorted once here, and kept for every later pass
        return
    except ValueError:
        pass
    import networkx as nx  # only to name the cycle, once there is one

    cycle = nx.find_cycle(graph.digraph)
    position = {name: i for i, name in enumerate(graph.names)}
    # Some edge of every cycle runs from a node written later to one written earlier.
    start = next(
        i for i, (source, target) in enumerate(cycle) if position[source] >= position[target]
    )
    edges = cycle[start + 1 :] + cycle[: start + 1]
    source, closing = edges[-1]
    names = [closing, *(target for _, target in edges)]
    node = graph[closing]
    raise SpecError(
        f"the graph has a cycle: {' -> '.join(names)}",
        node.where("inputs"),
        notes=[_closing_note(closing, source), *block_notes(node)],
    )


def _closing_note(closing: str, source: str) -> str:
    if closing == source:
        return f"node '{closing}' takes its own output as input"
    return f"node '{closing}' takes input from '{source}', which depends on it"


def check_reaches_outputs(graph: Graph) -> None:
    """Every node must contribute to some output: a dangling branch is almost always a typo."""
    needed = set(graph.outputs)
    stack = list(graph.outputs)  # one walk from all outputs: a node is visited once
    while stack:
        for source in graph[stack.pop()].inputs:
            if source not in needed:
                needed.add(source)
                stack.append(source)
    for node in graph.nodes:
        if node.name not in needed:
            raise SpecError(
                f"node '{node.name}' does not reach any output",
                node.location,
                hint="connect it, remove it, or list it under 'outputs'",
                notes=block_notes(node),
            )


def check_graph(graph: Graph) -> None:
    check_arity(graph)
    check_acyclic(graph)
    check_reaches_outputs(graph)
