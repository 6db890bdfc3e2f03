"""Proof that backends build the same network: parameter counts node by node.

Each backend's model is read back (not its lowering), and compared with the analytic counts
of the graph and with the other backends. Reports name every node that differs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xgraph.backend.rules import require_rules
from xgraph.ir.analysis import AnalysedGraph

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


def _pair(counts: Sequence[int]) -> Counts:
    """A backend's counts as a tuple, whatever sequence it gave them in."""
    trainable, non_trainable = counts
    return trainable, non_trainable


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
                    backend: _pair(per_node.get(node.name, (0, 0)))
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


@dataclass
class NodeError:
    name: str
    op: str
    relative_error: float


@dataclass
class NumericReport:
    """Relative error of every node's output between two backends, in topological order."""

    spec: str
    backends: tuple[str, str]
    tolerance: float
    nodes: list[NodeError] = field(default_factory=list)

    @property
    def first_divergence(self) -> NodeError | None:
        return next((n for n in self.nodes if not n.relative_error <= self.tolerance), None)

    @property
    def agrees(self) -> bool:
        return self.first_divergence is None

    @property
    def worst(self) -> NodeError:
        return max(self.nodes, key=lambda n: n.relative_error)

    def as_dict(self) -> dict[str, Any]:
        first = self.first_divergence
        return {
            "spec": self.spec,
            "backends": list(self.backends),
            "tolerance": self.tolerance,
            "agrees": self.agrees,
            "first_divergence": first.name if first else None,
            "max_relative_error": self.worst.relative_error,
            "nodes": [
                {"name": n.name, "op": n.op, "relative_error": n.relative_error} for n in self.nodes
            ],
        }

    def table(self) -> str:
        a, b = self.backends
        worst = self.worst
        lines = [
            f"Numeric parity for '{self.spec}' ({a} vs {b}), tolerance {self.tolerance:g} relative:"
        ]
        first = self.first_divergence
        if first is None:
            lines.append(
                f"  all {len(self.nodes)} nodes agree; largest error {worst.relative_error:.2e}"
                f" at {worst.name}"
            )
            return "\n".join(lines)
        lines.append(
            f"  first node beyond tolerance: {first.name} ({first.op}), "
            f"relative error {first.relative_error:.2e}"
        )
        lines.append(f"  {'node':<28} {'op':<18} {'relative error':>14}")
        for node in self.nodes:
            if not node.relative_error <= self.tolerance:
                lines.append(f"  {node.name:<28} {node.op:<18} {node.relative_error:>14.2e}")
        return "\n".join(lines)


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| / max |expected|: one number per tensor, scale-free."""
    if actual.shape != expected.shape:
        return float("inf")
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    difference = float(np.abs(actual.astype(np.float64) - expected).max()) if expected.size else 0.0
    return difference / max(scale, 1e-12)


def numeric_parity(
    analysed: AnalysedGraph, outputs: Mapping[str, Mapping[str, np.ndarray]], tolerance: float
) -> NumericReport:
    """Compare the second backend's per-node outputs with the first's."""
    (first, reference), (second, candidate) = list(outputs.items())[:2]
    report = NumericReport(analysed.name, (first, second), tolerance)
    for node in analysed.graph.nodes:
        if node.name in reference and node.name in candidate:
            error = relative_error(candidate[node.name], reference[node.name])
            report.nodes.append(NodeError(node.name, node.op, error))
    return report


def check_param_parity(
    analysed: AnalysedGraph, weights: Mapping[str, np.ndarray], backends: list[Any]
) -> ParityReport:
    """Build every backend with `weights` and compare the counts read off the models."""
    for backend in backends:  # every backend can lower every node, before any is built
        require_rules(analysed, backend.name)
    counts = {
        b.name: b.node_param_counts(b.build(analysed, dict(weights)), analysed) for b in backends
    }
    return param_parity(analysed, counts)


def probe_inputs(analysed: AnalysedGraph, batch: int, seed: int) -> list[np.ndarray]:
    """The seeded inputs the numeric checks run: standard normal, channels-last."""
    rng = np.random.default_rng(seed)
    return [
        rng.normal(size=(batch, *shape)).astype(np.float32) for shape in analysed.input_shapes()
    ]


def probe_every_node(
    analysed: AnalysedGraph,
    weights: Mapping[str, np.ndarray],
    backends: list[Any],
    batch: int = 2,
    seed: int = 0,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, dict[str, np.ndarray]]:
    """One seeded input through each backend built with `weights`, returning every node's
    output: backend name -> node name -> channels-last array."""
    for backend in backends:  # every backend can lower every node, before any is built
        require_rules(analysed, backend.name)
    every_node = tuple(n.name for n in analysed.graph.nodes if n.op != "input")
    probed = analysed.with_outputs(every_node)
    inputs = probe_inputs(analysed, batch, seed)
    outputs = {}
    for backend in backends:
        progress(f"running {backend.name} on every node")
        values = backend.predict(backend.build(probed, dict(weights)), inputs)
        outputs[backend.name] = dict(zip(every_node, values, strict=True))
    return outputs


def check_numeric_parity(
    analysed: AnalysedGraph,
    weights: Mapping[str, np.ndarray],
    backends: list[Any],
    tolerance: float = 1e-4,
    batch: int = 2,
    seed: int = 0,
    progress: Callable[[str], None] = lambda message: None,
) -> NumericReport:
    """Run one seeded input through two backends built with `weights`, returning every
    node's output, and compare them node by node (the first backend is the reference)."""
    outputs = probe_every_node(analysed, weights, backends[:2], batch, seed, progress)
    return numeric_parity(analysed, outputs, tolerance)


def check_numeric_parity_pairs(
    analysed: AnalysedGraph,
    weights: Mapping[str, np.ndarray],
    backends: list[Any],
    tolerance: float = 1e-4,
    batch: int = 2,
    seed: int = 0,
    progress: Callable[[str], None] = lambda message: None,
) -> list[NumericReport]:
    """Every pair of backends compared node by node, each backend run once; in a pair, the
    one named first is the reference."""
    outputs = probe_every_node(analysed, weights, backends, batch, seed, progress)
    names = [backend.name for backend in backends]
    return [
        numeric_parity(analysed, {a: outputs[a], b: outputs[b]}, tolerance)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    ]
