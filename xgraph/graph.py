"""The graph IR: a networkx DiGraph of nodes that carry an op, its attributes and a location.

Everything after expansion (passes, backends, code generation) reads this and nothing else:
no YAML, no pydantic spec models.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import networkx as nx

from xgraph.errors import Location
from xgraph.initializers import DEFAULT_INITIALIZER
from xgraph.ops import REGISTRY, Attrs, OpDef


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
    `xgraph.passes.check` its arity, cycles and dead nodes; this class assumes they passed.
    """

    def __init__(
        self,
        name: str,
        nodes: list[Node],
        inputs: tuple[str, ...],
        outputs: tuple[str, ...],
        initializer: str = DEFAULT_INITIALIZER,
    ) -> None:
        self.name = name
        self.initializer = initializer
        self.inputs = inputs
        self.outputs = outputs
        self.digraph = nx.DiGraph()
        self._position = {node.name: i for i, node in enumerate(nodes)}
        for node in nodes:
            self.digraph.add_node(node.name, node=node)
        for node in nodes:
            for source in node.inputs:
                self.digraph.add_edge(source, node.name)

    def __getitem__(self, name: str) -> Node:
        return self.digraph.nodes[name]["node"]

    def __contains__(self, name: object) -> bool:
        return name in self.digraph

    def __len__(self) -> int:
        return len(self.digraph)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    @cached_property
    def nodes(self) -> tuple[Node, ...]:
        """All nodes in topological order, ties broken by the order written in the spec."""
        order = nx.lexicographical_topological_sort(self.digraph, key=self._position.__getitem__)
        return tuple(self[name] for name in order)

    def consumers(self, name: str) -> list[str]:
        return list(self.digraph.successors(name))

    def with_outputs(self, outputs: tuple[str, ...]) -> Graph:
        """The same graph returning other nodes (feature extraction); unused nodes are dropped."""
        needed = set(outputs)
        for name in outputs:
            needed |= nx.ancestors(self.digraph, name)
        kept = [node for node in self.nodes if node.name in needed]
        inputs = tuple(name for name in self.inputs if name in needed)
        return Graph(self.name, kept, inputs, outputs, self.initializer)
