"""What differs between two specs after expansion: parameters, nodes added, removed and
changed, and the totals. Nodes are matched structurally, within their block instances
(xgraph.reports.matching), so a variant with fewer repeats compares its exit flow with the
base's exit flow, not with a middle-flow block that happens to carry the same name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xgraph.errors import as_yaml
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.reports.matching import (
    braced,
    match_nodes,
    matched_sources,
    relative_name,
    whole_instances,
)

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
    # The outermost block instance around the node that was added or removed whole, and the
    # block it instantiates: the text shows such an instance as one row.
    instance: str = ""
    use: str = ""

    @property
    def params(self) -> int:
        return self.trainable_params + self.non_trainable_params


@dataclass(frozen=True)
class NodeChange:
    """A node in both specs whose op, attributes, inputs, shape or counts differ:
    each as (field, before, after)."""

    name: str
    changes: tuple[tuple[str, Any, Any], ...]
    before_name: str = ""  # its name in the first spec, where that differs
    instance: str = ""  # the outermost block instance around it, and the blocks it instantiates
    use: str = ""  # (`outer/inner` where instances nest)


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
    # Parameters whose values differ: (name, before, after), None where a spec lacks it.
    params: list[tuple[str, Any, Any]] = field(default_factory=list)
    # Block instances matched under another name: (name before, name after, block).
    renamed: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def same(self) -> bool:
        different = (
            self.added,
            self.removed,
            self.changed,
            self.interface,
            self.params,
            self.renamed,
        )
        return not any(different) and all(a == b for a, b in self.totals.values())


# The fields of a node that follow from the shapes of its inputs (and so from the input
# size, the width of earlier layers, ...): `ignore_shapes` leaves them out.
SHAPE_FIELDS = ("output_shape", "trainable_params", "non_trainable_params", "macs")


def _facts(analysed: AnalysedGraph, node: Node, whole: tuple[str, str] = ("", "")) -> NodeFacts:
    counts = analysed.counts[node.name]
    return NodeFacts(
        node.name,
        node.op,
        tuple(analysed.shapes[node.name]),
        counts.trainable,
        counts.non_trainable,
        counts.macs,
        *whole,
    )


def _attributes(node: Node) -> dict[str, Any]:
    """The node's attributes, defaults filled in, with those at their op's default left out
    where the other op lacks them (so `depth_multiplier: 1` does not show as a change)."""
    return node.attrs.model_dump()


def _default(node: Node, name: str) -> Any:
    info = type(node.attrs).model_fields.get(name)
    return None if info is None else info.default


def _changes(
    a: AnalysedGraph,
    b: AnalysedGraph,
    x: Node,
    y: Node,
    rewired: bool,
    ignore_shapes: bool,
) -> list[tuple[str, Any, Any]]:
    changes: list[tuple[str, Any, Any]] = []
    if x.op != y.op:
        changes.append(("op", x.op, y.op))
    old, new = _attributes(x), _attributes(y)
    if ignore_shapes and x.op == y.op == "input":
        old.pop("shape", None), new.pop("shape", None)
    for key in [*old, *(k for k in new if k not in old)]:
        if key in old and key in new:
            if old[key] != new[key]:
                changes.append((key, old[key], new[key]))
        elif key in old and old[key] != _default(x, key):
            changes.append((key, old[key], None))
        elif key in new and new[key] != _default(y, key):
            changes.append((key, None, new[key]))
    if rewired:
        changes.append(("inputs", list(x.inputs), list(y.inputs)))
    if ignore_shapes:
        return changes
    fx, fy = _facts(a, x), _facts(b, y)
    for name in SHAPE_FIELDS:
        if getattr(fx, name) != getattr(fy, name):
            changes.append((name, getattr(fx, name), getattr(fy, name)))
    return changes


def diff_params(a: AnalysedGraph, b: AnalysedGraph) -> list[tuple[str, Any, Any]]:
    """The parameters whose values differ, in `a`'s order then `b`'s new ones."""
    names = [*a.params, *(name for name in b.params if name not in a.params)]
    return [
        (name, a.params.get(name), b.params.get(name))
        for name in names
        if a.params.get(name) != b.params.get(name)
    ]


def diff_graphs(a: AnalysedGraph, b: AnalysedGraph, ignore_shapes: bool = False) -> GraphDiff:
    """Nodes of `b` not in `a` (added, in `b`'s order), of `a` not in `b` (removed, in `a`'s
    order), in both but different (changed), the parameters that differ and the totals of
    each. `ignore_shapes` leaves out the changes of shape and counts of nodes that are
    otherwise the same (the totals still show their sum)."""
    result = GraphDiff(a.name, b.name)
    matching = match_nodes(a.graph.nodes, b.graph.nodes)
    renames = matching.a_to_b()
    result.renamed = matching.renamed
    before_of = {y.name: x for x, y in matching.pairs}
    added = {node.name for node in b.graph.nodes if node.name not in before_of}
    removed = {node.name for node in a.graph.nodes if node.name not in renames}

    # An input compares as the matched nodes it stands for: a node fed around blocks that
    # were added or removed (the exit flow after a shorter middle flow) is not rewired.
    def sources_a(name: str) -> tuple[str, ...]:
        return matched_sources(a.graph, name, removed, renames)

    def sources_b(name: str) -> tuple[str, ...]:
        return matched_sources(b.graph, name, added, {})

    whole_added = whole_instances(list(b.graph.nodes), added)
    whole_removed = whole_instances(list(a.graph.nodes), removed)
    for node in b.graph.nodes:
        if node.name in added:
            result.added.append(_facts(b, node, whole_added[node.name]))
            continue
        x = before_of[node.name]
        rewired = [sources_a(name) for name in x.inputs] != [sources_b(n) for n in node.inputs]
        if changes := _changes(a, b, x, node, rewired, ignore_shapes):
            instance = node.block[0] if node.block else ""
            use = "/".join(node.block_uses)
            was = x.name if x.name != node.name else ""
            result.changed.append(NodeChange(node.name, tuple(changes), was, instance, use))
    result.removed = [
        _facts(a, node, whole_removed[node.name]) for node in a.graph.nodes if node.name in removed
    ]
    for edge in ("inputs", "outputs"):
        before, after = list(getattr(a.graph, edge)), list(getattr(b.graph, edge))
        if [sources_a(name) for name in before] != [sources_b(name) for name in after]:
            result.interface.append((edge, before, after))
    result.params = diff_params(a, b)
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


def _nodes(count: int) -> str:
    return f"{count} node{'' if count == 1 else 's'}"


def _signed(delta: int) -> str:
    return f"{delta:+,}" if delta else "0"


def _shape(shape: tuple[int, ...]) -> str:
    return "(None, " + ", ".join(str(d) for d in shape) + ")"


def _rows(nodes: list[NodeFacts]) -> list[tuple[str, str, str, str]]:
    """A row per node, or per run of whole block instances of one block (added or removed
    together): `block{9..12} (4 x middle_block: 40 nodes)`."""
    groups: list[list[NodeFacts]] = []
    for facts in nodes:
        last = groups[-1][-1] if groups else None
        if last is not None and facts.instance and facts.use == last.use and last.instance:
            groups[-1].append(facts)
        else:
            groups.append([facts])
    rows = []
    for group in groups:
        end = group[-1]
        if not end.instance:
            rows.append(
                (
                    f"{end.name} ({end.op})",
                    _shape(end.output_shape),
                    f"{end.params:,}",
                    f"{end.macs:,}",
                )
            )
            continue
        instances = list(dict.fromkeys(facts.instance for facts in group))
        times = f"{len(instances)} x " if len(instances) > 1 else ""
        label = f"{braced(instances)} ({times}{end.use}: {_nodes(len(group))})"
        params, macs = sum(f.params for f in group), sum(f.macs for f in group)
        rows.append((label, _shape(end.output_shape), f"{params:,}", f"{macs:,}"))
    return rows


def _table(nodes: list[NodeFacts]) -> list[str]:
    rows = _rows(nodes)
    header = ("Node (op)", "Output shape", "Params", "MACs")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    return [
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def _grouped(changed: list[NodeChange]) -> list[tuple[str, tuple[tuple[str, Any, Any], ...]]]:
    """(shown name, changes): a node that changes alike in several instances of one block
    shows once (`block{5..8}_sepconv1`), and so do the nodes of those instances that change
    alike (`block{5..8}_sepconv{1..3}`, `block2_{residual,sepconv1}`)."""
    alike: dict[object, tuple[list[str], NodeChange]] = {}
    for change in changed:
        key: object = change.name
        if change.instance and change.name.startswith(change.instance + "_"):
            rest = relative_name(change.name, change.instance)
            key = (change.use, rest, change.changes, bool(change.before_name))
        alike.setdefault(key, ([], change))[0].append(change.instance)
    # then nodes with the same changes in the same instances
    together: dict[object, list[tuple[list[str], NodeChange]]] = {}
    for key, (instances, change) in alike.items():
        if isinstance(key, tuple):
            key = (tuple(instances), change.changes, bool(change.before_name))
        together.setdefault(key, []).append((instances, change))
    shown = []
    for group in together.values():
        instances, change = group[0]
        rests = [relative_name(c.name, c.instance) for _, c in group]
        name = (
            braced(instances) + braced(rests)
            if len(group) > 1 or len(instances) > 1
            else change.name
        )
        if change.before_name:
            name += f" (was {braced([c.before_name for _, c in group])})"
        shown.append((name, change.changes))
    return shown


def diff_text(result: GraphDiff) -> str:
    """The diff for people: totals and parameters first, then the nodes added, removed and
    changed."""
    lines = [f"--- {result.before}", f"+++ {result.after}", "totals:"]
    labels = {key: _TOTAL_LABELS[key] for key in TOTALS}
    width = max(len(label) for label in labels.values())
    for key, (a, b) in result.totals.items():
        lines.append(f"  {(labels[key] + ':').ljust(width + 1)} {a:,} -> {b:,} ({_signed(b - a)})")
    if result.params:
        lines.append("params:")
        lines.extend(f"  {name}: {_value(a)} -> {_value(b)}" for name, a, b in result.params)
    for edge, before, after in result.interface:
        lines.append(f"{edge}: {', '.join(before)} -> {', '.join(after)}")
    if result.renamed:
        renamed = ", ".join(f"{a} -> {b} ({use})" for a, b, use in result.renamed)
        lines.append(f"renamed: {renamed}")
    lines.append(f"added: {_nodes(len(result.added))}")
    if result.added:
        lines.extend(_table(result.added))
    lines.append(f"removed: {_nodes(len(result.removed))}")
    if result.removed:
        lines.extend(_table(result.removed))
    lines.append(f"changed: {_nodes(len(result.changed))}")
    for name, changes in _grouped(result.changed):
        if len(changes) == 1:
            field_name, old, new = changes[0]
            lines.append(f"  {name}: {field_name}: {_value(old)} -> {_value(new)}")
            continue
        lines.append(f"  {name}:")
        for field_name, old, new in changes:
            lines.append(f"    {field_name}: {_value(old)} -> {_value(new)}")
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
        "params": [
            {"name": name, "before": _json_value(a), "after": _json_value(b)}
            for name, a, b in result.params
        ],
        "renamed": [{"before": a, "after": b, "block": use} for a, b, use in result.renamed],
        "added": [node(n) for n in result.added],
        "removed": [node(n) for n in result.removed],
        "changed": [
            {
                "name": change.name,
                "before_name": change.before_name or change.name,
                "changes": [
                    {"field": name, "before": _json_value(old), "after": _json_value(new)}
                    for name, old, new in change.changes
                ],
            }
            for change in result.changed
        ],
    }
