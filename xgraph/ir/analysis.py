"""The analysed graph: the IR plus every fact the passes derived from it.

This is what backends, the summary and code generation consume.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xgraph.budgets import Budgets, active_budgets
from xgraph.ir.check import check_graph
from xgraph.ir.counts import NodeCounts, count_nodes
from xgraph.ir.graph import Graph, Node
from xgraph.ir.shapes import infer_shapes
from xgraph.ops.base import Shape


@dataclass(frozen=True)
class AnalysedGraph:
    graph: Graph
    shapes: dict[str, Shape]
    counts: dict[str, NodeCounts]
    params: dict[str, Any] = field(default_factory=dict)
    # The spec's other sections, each compiled by the package that owns it (`training:` by
    # xgraph.training.section into a recipe): the IR carries them without knowing them.
    sections: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def trainable_params(self) -> int:
        return sum(c.trainable for c in self.counts.values())

    @property
    def non_trainable_params(self) -> int:
        return sum(c.non_trainable for c in self.counts.values())

    @property
    def total_params(self) -> int:
        return self.trainable_params + self.non_trainable_params

    @property
    def macs(self) -> int:
        return sum(c.macs for c in self.counts.values())

    def input_shapes(self) -> list[Shape]:
        return [self.shapes[name] for name in self.graph.inputs]

    def input_shape_of(self, node: Node) -> list[Shape]:
        return [self.shapes[name] for name in node.inputs]

    def with_outputs(self, outputs: tuple[str, ...]) -> AnalysedGraph:
        """Feature extraction: the same analysis restricted to what `outputs` need. A node's
        shape and counts depend only on what comes before it, so they are kept, not
        recomputed."""
        graph = self.graph.with_outputs(outputs)
        kept = [node.name for node in graph.nodes]
        return AnalysedGraph(
            graph,
            {name: self.shapes[name] for name in kept},
            {name: self.counts[name] for name in kept},
            dict(self.params),
            self.sections,
        )

    def with_section(self, name: str, value: Any) -> AnalysedGraph:
        """The same analysis with one section replaced (a recipe changed on the command line)."""
        return dataclasses.replace(self, sections={**self.sections, name: value})


def analyse(
    graph: Graph,
    params: dict[str, Any] | None = None,
    budgets: Budgets | None = None,
    sections: Mapping[str, Any] | None = None,
) -> AnalysedGraph:
    """Check the graph's structure, then infer shapes and count parameters and MACs (and
    refuse weights beyond the budgets)."""
    budgets = active_budgets(budgets)
    check_graph(graph)
    shapes = infer_shapes(graph, budgets)
    counts = count_nodes(graph, shapes, budgets)
    return AnalysedGraph(graph, shapes, counts, dict(params or {}), dict(sections or {}))
