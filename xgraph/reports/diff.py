"""What differs between two specs after expansion: nodes added, removed and changed, and the
totals. Nodes are matched by name, so a variant that keeps its base's names (as `extends`
does) diffs node by node."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xgraph.errors import as_yaml
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node

TOTALS = ("nodes", "total_params", "trainable_params", "non_trainable_params", "macs")
_TOTAL_LABELS = {
    "nodes": "nodes",
    "total_params": "parameters",
    "trainable_params": "  trainable",
    "non_trainable_params": "  non-trainable",
    "macs": "MACs",
}


@dataclass(frozen=True)
class NodeFacts:
    """A node as the diff shows it: op, output shape and counts."""

    name: str
    op: str
    output_shape: tuple[int, ...]
    trainable_params: int
    non_trainable_params: int
    macs: int

    @property
    def params(self) -> int:
        return self.trainable_params + self.non_trainable_params


@dataclass(frozen=True)
class NodeChange:
    """A node in both specs whose op, attributes, inputs, shape or counts differ:
    each as (field, before, after)."""

    name: str
    changes: tuple[tuple[str, Any, Any], ...]


@dataclass
class GraphDiff:
    before: str
    after: str
    added: list[NodeFacts] = field(default_factory=list)
    removed: list[NodeFacts] = field(default_factory=list)
    changed: list[NodeChange] = field(default_factory=list)
    totals: dict[str, tuple[int, int]] = field(default_factory=dict)
    # The graph's inputs and outputs (names, in order), where they differ.
    interface: list[tuple[str, list[str], list[str]]] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not (self.added or self.removed or self.changed or self.interface) and all(
            a == b for a, b in self.totals.values()
        )


def _facts(analysed: AnalysedGraph, node: Node) -> NodeFacts:
    counts = analysed.counts[node.name]
    return NodeFacts(
        node.name,
        node.op,
        tuple(analysed.shapes[node.name]),
        counts.trainable,
        counts.non_trainable,
        counts.macs,
    )


def _attributes(node: Node) -> dict[str, Any]:
    """The node's attributes, defaults filled in, with those at their op's default left out
    where the other op lacks them (so `depth_multiplier: 1` does not show as a change)."""
    return node.attrs.model_dump()


def _default(node: Node, name: str) -> Any:
    info = type(node.attrs).model_fields.get(name)
    return None if info is None else info.default


def _changes(a: AnalysedGraph, b: AnalysedGraph, x: Node, y: Node) -> list[tuple[str, Any, Any]]:
    changes: list[tuple[str, Any, Any]] = []
    if x.op != y.op:
        changes.append(("op", x.op, y.op))
    old, new = _attributes(x), _attributes(y)
    for key in [*old, *(k for k in new if k not in old)]:
        if key in old and key in new:
            if old[key] != new[key]:
                changes.append((key, old[key], new[key]))
        elif key in old and old[key] != _default(x, key):
            changes.append((key, old[key], None))
        elif key in new and new[key] != _default(y, key):
            changes.append((key, None, new[key]))
    if x.inputs != y.inputs:
        changes.append(("inputs", list(x.inputs), list(y.inputs)))
    fx, fy = _facts(a, x), _facts(b, y)
    for name in ("output_shape", "trainable_params", "non_trainable_params", "macs"):
        if getattr(fx, name) != getattr(fy, name):
            changes.append((name, getattr(fx, name), getattr(fy, name)))
    return changes


def diff_graphs(a: AnalysedGraph, b: AnalysedGraph) -> GraphDiff:
    """Nodes of `b` not in `a` (added, in `b`'s order), of `a` not in `b` (removed, in `a`'s
    order), in both but different (changed), and the totals of each."""
    result = GraphDiff(a.name, b.name)
    in_a = {node.name: node for node in a.graph.nodes}
    in_b = {node.name: node for node in b.graph.nodes}
    for node in b.graph.nodes:
        if node.name not in in_a:
            result.added.append(_facts(b, node))
        elif changes := _changes(a, b, in_a[node.name], node):
            result.changed.append(NodeChange(node.name, tuple(changes)))
    result.removed = [_facts(a, node) for node in a.graph.nodes if node.name not in in_b]
    for edge in ("inputs", "outputs"):
        before, after = list(getattr(a.graph, edge)), list(getattr(b.graph, edge))
        if before != after:
            result.interface.append((edge, before, after))
    for key in TOTALS:
        result.totals[key] = (
            (len(a.graph), len(b.graph)) if key == "nodes" else (getattr(a, key), getattr(b, key))
        )
    return result


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, tuple | list) and value and all(isinstance(v, int) for v in value):
        return "(" + ", ".join(str(v) for v in value) + ")"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return as_yaml(value).strip("'")


def _signed(delta: int) -> str:
    return f"{delta:+,}" if delta else "0"


def _shape(shape: tuple[int, ...]) -> str:
    return "(None, " + ", ".join(str(d) for d in shape) + ")"


def _table(nodes: list[NodeFacts]) -> list[str]:
    rows = [
        (f"{n.name} ({n.op})", _shape(n.output_shape), f"{n.params:,}", f"{n.macs:,}")
        for n in nodes
    ]
    header = ("Node (op)", "Output shape", "Params", "MACs")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    return [
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def diff_text(result: GraphDiff) -> str:
    """The diff for people: totals first, then the nodes added, removed and changed."""
    lines = [f"--- {result.before}", f"+++ {result.after}", "totals:"]
    labels = {key: _TOTAL_LABELS[key] for key in TOTALS}
    width = max(len(label) for label in labels.values())
    for key, (a, b) in result.totals.items():
        lines.append(f"  {(labels[key] + ':').ljust(width + 1)} {a:,} -> {b:,} ({_signed(b - a)})")
    for edge, before, after in result.interface:
        lines.append(f"{edge}: {', '.join(before)} -> {', '.join(after)}")
    lines.append(f"added: {len(result.added)} nodes")
    if result.added:
        lines.extend(_table(result.added))
    lines.append(f"removed: {len(result.removed)} nodes")
    if result.removed:
        lines.extend(_table(result.removed))
    lines.append(f"changed: {len(result.changed)} nodes")
    for change in result.changed:
        lines.append(f"  {change.name}:")
        for name, old, new in change.changes:
            lines.append(f"    {name}: {_value(old)} -> {_value(new)}")
    return "\n".join(lines)


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return value


def diff_dict(result: GraphDiff) -> dict[str, Any]:
    """The diff as a JSON document."""

    def node(facts: NodeFacts) -> dict[str, Any]:
        return {
            "name": facts.name,
            "op": facts.op,
            "output_shape": list(facts.output_shape),
            "trainable_params": facts.trainable_params,
            "non_trainable_params": facts.non_trainable_params,
            "macs": facts.macs,
        }

    return {
        "before": result.before,
        "after": result.after,
        "same": result.same,
        "totals": {
            key: {"before": a, "after": b, "delta": b - a} for key, (a, b) in result.totals.items()
        },
        "interface": [
            {"field": edge, "before": before, "after": after}
            for edge, before, after in result.interface
        ],
        "added": [node(n) for n in result.added],
        "removed": [node(n) for n in result.removed],
        "changed": [
            {
                "name": change.name,
                "changes": [
                    {"field": name, "before": _json_value(old), "after": _json_value(new)}
                    for name, old, new in change.changes
                ],
            }
            for change in result.changed
        ],
    }
