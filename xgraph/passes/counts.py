"""Parameter and multiply-accumulate counts per node, from each op's own rules."""

from __future__ import annotations

from dataclasses import dataclass

from xgraph.graph import Graph
from xgraph.ops.base import ParamSpec, Shape


@dataclass(frozen=True)
class NodeCounts:
    params: tuple[ParamSpec, ...]
    macs: int

    @property
    def trainable(self) -> int:
        return sum(p.size for p in self.params if p.trainable)

    @property
    def non_trainable(self) -> int:
        return sum(p.size for p in self.params if not p.trainable)


def count_nodes(graph: Graph, shapes: dict[str, Shape]) -> dict[str, NodeCounts]:
    counts = {}
    for node in graph.nodes:
        inputs = [shapes[name] for name in node.inputs]
        counts[node.name] = NodeCounts(
            params=tuple(node.opdef.params(node.attrs, inputs)),
            macs=node.opdef.macs(node.attrs, inputs, shapes[node.name]),
        )
    return counts
