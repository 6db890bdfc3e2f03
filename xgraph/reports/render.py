"""Drawing the graph: Graphviz DOT text, and SVG/PNG through Graphviz's `dot` when installed."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Iterator
from itertools import count
from pathlib import Path

from xgraph.errors import SpecError
from xgraph.files import write_atomically
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ops.base import format_shape

RENDERED_FORMATS = {".svg": "svg", ".png": "png"}

Block = tuple[str, ...]


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _block_tree(blocks: Iterable[Block]) -> dict[Block, list[Block]]:
    """Each block instance's directly nested instances, in order of first appearance."""
    children: dict[Block, list[Block]] = {(): []}
    for block in blocks:
        for depth in range(1, len(block) + 1):
            prefix = block[:depth]
            if prefix not in children:
                children[prefix] = []
                children[block[: depth - 1]].append(prefix)
    return children


def _cluster_lines(
    block: Block,
    statements: dict[Block, list[str]],
    children: dict[Block, list[Block]],
    indent: str,
    numbers: Iterator[int],
) -> list[str]:
    """The nodes of `block`, then a cluster per nested block instance, nested as they are."""
    lines = [f"{indent}{s}" for s in statements.get(block, [])]
    for child in children[block]:
        lines.append(f"{indent}subgraph cluster_{next(numbers)} {{")
        lines.append(f"{indent}  label={_quote(child[-1])}; style=dashed;")
        lines += _cluster_lines(child, statements, children, indent + "  ", numbers)
        lines.append(f"{indent}}}")
    return lines


def to_dot(analysed: AnalysedGraph) -> str:
    """DOT text: one box per node with its op and output shape; block instances as clusters,
    nested as the blocks are."""
    graph = analysed.graph
    lines = [
        f"digraph {_quote(graph.name)} {{",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fillcolor="#f4f4f4", fontname="Helvetica"];',
    ]
    statements: dict[Block, list[str]] = {}
    for node in graph.nodes:
        label = f"{node.name}\n{node.op} {format_shape(analysed.shapes[node.name])}"
        statement = f"{_quote(node.name)} [label={_quote(label)}];"
        statements.setdefault(node.block, []).append(statement)
    lines += _cluster_lines((), statements, _block_tree(statements), "  ", iter(count()))
    for node in graph.nodes:
        lines += [f"  {_quote(source)} -> {_quote(node.name)};" for source in node.inputs]
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(analysed: AnalysedGraph, output: Path) -> None:
    """Write `output` as .dot, .svg or .png; nothing is written when rendering fails."""
    suffix = output.suffix.lower()
    dot_text = to_dot(analysed)
    if suffix == ".dot":
        write_atomically(output, dot_text.encode())
        return
    if suffix not in RENDERED_FORMATS:
        raise SpecError(f"cannot draw to '{output.name}': use a .dot, .svg or .png file")
    executable = shutil.which("dot")
    if executable is None:
        raise SpecError(
            f"drawing {suffix} needs Graphviz's 'dot' program, which is not installed",
            hint="install graphviz (apt-get install graphviz), or write a .dot file",
        )
    result = subprocess.run(
        [executable, f"-T{RENDERED_FORMATS[suffix]}"],
        input=dot_text.encode(),
        capture_output=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        raise SpecError(f"Graphviz's dot could not draw '{output.name}': {message}")
    write_atomically(output, result.stdout)
