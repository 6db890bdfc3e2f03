"""Summaries of an analysed graph: a Keras-style table and a JSON document."""

from __future__ import annotations

from typing import Any

from xgraph.errors import as_yaml
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ops.base import format_shape


def _defaults(analysed: AnalysedGraph) -> dict[str, dict[str, Any]]:
    """The spec's `defaults:` (per op, attribute values), resolved; empty when it has none."""
    return dict(analysed.sections.get("defaults") or {})


def summary_dict(analysed: AnalysedGraph) -> dict[str, Any]:
    defaults = _defaults(analysed)
    return ({"defaults": defaults} if defaults else {}) | {
        "name": analysed.name,
        "params": analysed.params,
        "inputs": list(analysed.graph.inputs),
        "outputs": list(analysed.graph.outputs),
        "total_params": analysed.total_params,
        "trainable_params": analysed.trainable_params,
        "non_trainable_params": analysed.non_trainable_params,
        "macs": analysed.macs,
        "nodes": [
            {
                "name": node.name,
                "op": node.op,
                "inputs": list(node.inputs),
                "output_shape": list(analysed.shapes[node.name]),
                "trainable_params": analysed.counts[node.name].trainable,
                "non_trainable_params": analysed.counts[node.name].non_trainable,
                "macs": analysed.counts[node.name].macs,
            }
            for node in analysed.graph.nodes
        ],
    }


def _human(count: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.2f}{unit}"
    return str(count)


def summary_table(analysed: AnalysedGraph) -> str:
    """One row per node, in the manner of Keras's `model.summary()`, with MACs."""
    header = ("Node (op)", "Output shape", "Params", "MACs", "Inputs")
    rows = []
    for node in analysed.graph.nodes:
        counts = analysed.counts[node.name]
        params = counts.trainable + counts.non_trainable
        rows.append(
            (
                f"{node.name} ({node.op})",
                format_shape(("None", *analysed.shapes[node.name])),  # type: ignore[arg-type]
                f"{params:,}",
                _human(counts.macs) if counts.macs else "0",
                ", ".join(node.inputs),
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    widths[-1] = min(widths[-1], 48)

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.ljust(width) for cell, width in zip(cells, widths, strict=True)
        ).rstrip()

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    out = [f'Model: "{analysed.name}"']
    for op, values in _defaults(analysed).items():
        shown = ", ".join(f"{attr}={as_yaml(value)}" for attr, value in values.items())
        out.append(f"Defaults for {op}: {shown}")
    out += [rule, line(header), rule.replace("-", "=")]
    out += [line(row) for row in rows]
    out += [
        rule,
        f"Total params: {analysed.total_params:,}",
        f"Trainable params: {analysed.trainable_params:,}",
        f"Non-trainable params: {analysed.non_trainable_params:,}",
        f"MACs: {analysed.macs:,} ({_human(analysed.macs)})",
        rule,
    ]
    return "\n".join(out)


TABLE_COLUMNS = ("spec", "input", "parameters", "trainable", "MACs", "weighted layers")


def table_row(analysed: AnalysedGraph) -> dict[str, Any]:
    """One spec as a row of the comparison table: weighted layers are the nodes that
    multiply-accumulate (convolutions and matrix products), as papers count depth."""
    shapes = [analysed.shapes[name] for name in analysed.graph.inputs]
    return {
        "spec": analysed.name,
        "input": [list(shape) for shape in shapes],
        "total_params": analysed.total_params,
        "trainable_params": analysed.trainable_params,
        "macs": analysed.macs,
        "weighted_layers": sum(1 for c in analysed.counts.values() if c.macs),
    }


def table_text(rows: list[dict[str, Any]]) -> str:
    """The rows as an aligned table, in the order given."""
    cells = [
        (
            row["spec"],
            ", ".join("x".join(str(d) for d in shape) for shape in row["input"]),
            f"{row['total_params']:,}",
            f"{row['trainable_params']:,}",
            _human(row["macs"]),
            str(row["weighted_layers"]),
        )
        for row in rows
    ]
    widths = [max(len(r[i]) for r in [TABLE_COLUMNS, *cells]) for i in range(len(TABLE_COLUMNS))]
    lines = []
    for index, row in enumerate([TABLE_COLUMNS, *cells]):
        left = row[:2]
        right = row[2:]
        lines.append(
            "  ".join(
                [*(c.ljust(w) for c, w in zip(left, widths[:2], strict=True))]
                + [c.rjust(w) for c, w in zip(right, widths[2:], strict=True)]
            ).rstrip()
        )
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
