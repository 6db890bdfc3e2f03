"""Proof that backends build the same network: parameter counts node by node.

Each backend's model is read back (not its lowering), and compared with the analytic counts
of the graph and with the other backends. Reports name every node that differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xgraph.analysis import AnalysedGraph

Counts = tuple[int, int]


@dataclass
class NodeParity:
    name: str
    op: str
    analytic: Counts
    backends: dict[str, Counts]

    @property
    def agrees(self) -> bool:
        return all(counts == self.analytic for counts in self.backends.values())


@dataclass
class ParityReport:
    spec: str
    backends: list[str]
    nodes: list[NodeParity] = field(default_factory=list)
    totals: dict[str, Counts] = field(default_factory=dict)

    @property
    def agrees(self) -> bool:
        return all(node.agrees for node in self.nodes)

    @property
    def differences(self) -> list[NodeParity]:
        return [node for node in self.nodes if not node.agrees]

    def as_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "backends": self.backends,
            "agrees": self.agrees,
            "totals": {
                name: {"trainable": t, "non_trainable": n} for name, (t, n) in self.totals.items()
            },
            "differences": [
                {
                    "name": node.name,
                    "op": node.op,
                    "analytic": {"trainable": node.analytic[0], "non_trainable": node.analytic[1]},
                    **{
                        name: {"trainable": t, "non_trainable": n}
                        for name, (t, n) in node.backends.items()
                    },
                }
                for node in self.differences
            ],
        }

    def table(self) -> str:
        lines = [f"Parameter parity for '{self.spec}' ({', '.join(self.backends)}):"]
        columns = ["analytic", *self.backends]
        for column in columns:
            trainable, statistics = self.totals[column]
            lines.append(
                f"  {column:<9} trainable {trainable:>12,}   non-trainable {statistics:>9,}"
            )
        if self.agrees:
            lines.append(f"  all {len(self.nodes)} nodes agree")
            return "\n".join(lines)
        lines.append(f"  {len(self.differences)} node(s) differ (trainable / non-trainable):")
        header = f"  {'node':<28} {'op':<18}" + "".join(f" {c:>22}" for c in columns)
        lines.append(header)
        for node in self.differences:
            cells = [node.analytic, *(node.backends[b] for b in self.backends)]
            lines.append(
                f"  {node.name:<28} {node.op:<18}"
                + "".join(f" {f'{t:,} / {n:,}':>22}" for t, n in cells)
            )
        return "\n".join(lines)


def param_parity(
    analysed: AnalysedGraph, counts: Mapping[str, Mapping[str, Counts]]
) -> ParityReport:
    """Compare each backend's per-node (trainable, non-trainable) counts with the analysis."""
    report = ParityReport(analysed.name, list(counts))
    for node in analysed.graph.nodes:
        expected = analysed.counts[node.name]
        report.nodes.append(
            NodeParity(
                node.name,
                node.op,
                (expected.trainable, expected.non_trainable),
                {
                    backend: tuple(per_node.get(node.name, (0, 0)))
                    for backend, per_node in counts.items()
                },
            )
        )
    report.totals["analytic"] = (analysed.trainable_params, analysed.non_trainable_params)
    for backend, per_node in counts.items():
        report.totals[backend] = (
            sum(t for t, _ in per_node.values()),
            sum(n for _, n in per_node.values()),
        )
    return report
