"""The graph IR: nodes that carry an op, its attributes and a location, wired by name.

Everything after expansion (passes, backends, code generation) reads this and nothing else:
no YAML, no pydantic spec models.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from xgraph.errors import Location
from xgraph.ops import REGISTRY, Attrs, OpDef
from xgraph.ops.initializers import DEFAULT_INITIALIZER

if TYPE_CHECKING:
    import networkx as nx


@dataclass(frozen=True)
class Node:
    """One layer: `inputs` are node names in order; `block` names the block instances around it."""

    name: str
    op: str
    attrs: Attrs
    inputs: tuple[str, ...]
    location: Location
    block: tuple[str, ...] = ()
    attr_locations: Mapping[str, Location] = field(default_factory=dict, compare=False)
    # Provenance, for code generation: the block each instance in `block` instantiates, and
    # the attributes whose value is exactly a spec parameter (and nothing else reads it).
    block_uses: tuple[str, ...] = field(default=(), compare=False)
    param_refs: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def opdef(self) -> OpDef:
        return REGISTRY[self.op]

    def where(self, attr: str | None = None) -> Location:
        """Where the node, or one of its attributes, was written."""
        if attr is not None and attr in self.attr_locations:
            return self.attr_locations[attr]
        return self.location


class Graph:
    """A checked, acyclic graph of nodes with ordered inputs and outputs.

    `xgraph.spec.compile` checks names and references before building it, and
    `xgraph.ir.check` its arity, cycles and dead nodes; this class assumes they passed.
    The common walks (topological order, consumers, ancestors) are done here directly;
    `digraph`, the same graph as a networkx DiGraph, is built (and networkx imported) only
    when asked for, which keeps the CLI's start-up short.
    """

    def __init__(
        self,
        name: str,
        nodes: list[Node],
        inputs: tuple[str, ...],
        outputs: tuple[str, ...],
        initializer: str = DEFAULT_INITIALIZER,
        description: str = "",
    ) -> None:
        self.name = name
        self.description = description
        self.initializer = initializer
        self.inputs = inputs
        self.outputs = outputs
        self._by_name = {node.name: node for node in nodes}
        self._position = {name: i for i, name in enumerate(self._by_name)}
        self._consumers: dict[str, list[str]] = {name: [] for name in self._by_name}
        for node in nodes:
            for source in dict.fromkeys(node.inputs):
                self._consumers[source].append(node.name)

    def __getitem__(self, name: str) -> Node:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self._by_name)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    @property
    def names(self) -> list[str]:
        """Node names in the order they were written."""
        return list(self._by_name)

    def topological_names(self) -> list[str] | None:
        """Names in topological order, ties broken by the order written in the spec; None
        when the graph has a cycle (Kahn's algorithm over a heap of written positions)."""
        waiting = {name: len(set(node.inputs)) for name, node in self._by_name.items()}
        ready = [self._position[name] for name, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        order = []
        written = list(self._by_name)
        while ready:
            name = written[heapq.heappop(ready)]
            order.append(name)
            for consumer in self._consumers[name]:
                waiting[consumer] -= 1
                if waiting[consumer] == 0:
                    heapq.heappush(ready, self._position[consumer])
        return order if len(order) == len(written) else None

    @cached_property
    def nodes(self) -> tuple[Node, ...]:
        """All nodes in topological order, ties broken by the order written in the spec."""
        order = self.topological_names()
        if order is None:
            raise ValueError(f"graph '{self.name}' has a cycle")
        return tuple(self._by_name[name] for name in order)

    def source_files(self) -> list[str]:
        """The files the nodes were written in (a spec and those it extends), each once."""
        return list(dict.fromkeys(node.location.file for node in self.nodes))

    def consumers(self, name: str) -> list[str]:
        return list(self._consumers[name])

    def ancestors(self, name: str) -> set[str]:
        """Every node `name` depends on, itself excluded."""
        found: set[str] = set()
        stack = list(self._by_name[name].inputs)
        while stack:
            current = stack.pop()
            if current not in found:
                found.add(current)
                stack.extend(self._by_name[current].inputs)
        return found

    @cached_property
    def digraph(self) -> nx.DiGraph:
        """The graph as a networkx DiGraph (edges from each input to its consumer)."""
        import networkx as nx

        digraph = nx.DiGraph()
        for node in self._by_name.values():
            digraph.add_node(node.name, node=node)
        for node in self._by_name.values():
            for source in node.inputs:
                digraph.add_edge(source, node.name)
        return digraph

    def with_outputs(self, outputs: tuple[str, ...]) -> Graph:
        """The same graph returning other nodes (feature extraction); unused nodes are dropped."""
        needed = set(outputs)
        for name in outputs:
            needed |= self.ancestors(name)
        kept = [node for node in self.nodes if node.name in needed]
        inputs = tuple(name for name in self.inputs if name in needed)
        return Graph(self.name, kept, inputs, outputs, self.initializer, self.description)
