"""The diff of two specs for people (`diff_text`: totals and parameters first, block
instances added or removed whole as one row, alike changes as one line) and as a JSON
document (`diff_dict`)."""

from __future__ import annotations

from typing import Any

from xgraph.errors import as_yaml
from xgraph.reports.diff import TOTALS, GraphDiff, NodeChange, NodeFacts
from xgraph.reports.matching import braced, relative_name

_TOTAL_LABELS = {
    "nodes": "nodes",
    "total_params": "parameters",
    "trainable_params": "  trainable",
    "non_trainable_params": "  non-trainable",
    "macs": "MACs",
}


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


def _renames(renamed: list[tuple[str, str]]) -> list[str]:
    """A line per renamed node, the arrows aligned."""
    width = max(len(before) for before, _ in renamed)
    return [f"  {before.ljust(width)} -> {after}" for before, after in renamed]


def diff_text(result: GraphDiff) -> str:
    """The diff for people: totals and parameters first, then the nodes added, removed,
    renamed (only where some are) and changed."""
    lines = [f"--- {result.before}", f"+++ {result.after}", "totals:"]
    labels = {key: _TOTAL_LABELS[key] for key in TOTALS}
    width = max(len(label) for label in labels.values())
    for key, (a, b) in result.totals.items():
        lines.append(f"  {(labels[key] + ':').ljust(width + 1)} {a:,} -> {b:,} ({_signed(b - a)})")
    if result.params:
        lines.append("params:")
        lines.extend(f"  {name}: {_value(a)} -> {_value(b)}" for name, a, b in result.params)
    if result.defaults:
        lines.append("defaults:")
        for name, a, b in result.defaults:
            count = result.by_defaults.get(name, 0)
            follows = f" ({_nodes(count)})" if count else ""
            lines.append(f"  {name}: {_value(a)} -> {_value(b)}{follows}")
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
    if result.renamed_nodes:
        lines.append(f"renamed: {_nodes(len(result.renamed_nodes))}")
        lines.extend(_renames(result.renamed_nodes))
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
        "defaults": [
            {
                "name": name,
                "before": _json_value(a),
                "after": _json_value(b),
                "nodes": result.by_defaults.get(name, 0),
            }
            for name, a, b in result.defaults
        ],
        "renamed": [{"before": a, "after": b, "block": use} for a, b, use in result.renamed],
        "added": [node(n) for n in result.added],
        "removed": [node(n) for n in result.removed],
        "renamed_nodes": [{"before": a, "after": b} for a, b in result.renamed_nodes],
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
