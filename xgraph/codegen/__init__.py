"""Code generation: a spec's analysed graph as one standalone, readable Python module.

The core is framework-free and needs nothing but the analysed graph (no spec file, no
second compilation). It lowers every node through the backend's own op rules (the
`LayerCall` descriptions the builders instantiate), writes one definition for the block
instances that share a structure, turns runs of such instances into loops, and gives every
value a Python variable (`assemble`, `blocks`, `variables`, `params`): a frozen `Program`.
A backend's printer (`xgraph_<backend>.codegen`) turns that program into source through its
jinja2 templates; the source is compiled before it is returned.

Names: node names are validated identifiers, and `validate` has refused those a backend
cannot use (xgraph.backend.names). Every name the code makes from spec text (functions,
classes, variables) is a Python identifier clear of the module's own names, and spec text
printed in docstrings and comments is escaped: no spec can make the generated module run
code of its own.
"""

from __future__ import annotations

from pathlib import Path

from xgraph.backend.rules import require_rules
from xgraph.codegen.assemble import build_program
from xgraph.codegen.model import (
    BLOCK_INPUT,
    BlockCall,
    BlockDef,
    Comment,
    LayerStep,
    Loop,
    Param,
    Printer,
    Program,
    Rename,
    Statement,
)
from xgraph.codegen.names import (
    block_docstring,
    class_name,
    clear_of,
    docstring_lines,
    docstring_text,
    identifier,
    printable,
)
from xgraph.codegen.source import (
    LINE_LENGTH,
    Arg,
    Code,
    annotation,
    arguments,
    assign_call,
    format_call,
    plain,
    python_literal,
    verbatim,
)
from xgraph.errors import SpecError, did_you_mean
from xgraph.ir.analysis import AnalysedGraph

__all__ = [
    "BLOCK_INPUT",
    "LINE_LENGTH",
    "Arg",
    "BlockCall",
    "BlockDef",
    "Code",
    "Comment",
    "LayerStep",
    "Loop",
    "Param",
    "Printer",
    "Program",
    "Rename",
    "Statement",
    "annotation",
    "arguments",
    "assign_call",
    "block_docstring",
    "class_name",
    "clear_of",
    "docstring_lines",
    "docstring_text",
    "format_call",
    "generate",
    "identifier",
    "plain",
    "printable",
    "printer_for",
    "program",
    "python_literal",
    "verbatim",
]


def printer_for(backend: str) -> Printer:
    """The backend's printer, registered under the `xgraph.codegen` entry-point group."""
    from xgraph.plugins import CODEGEN, entries, load_entry

    found = {entry.name: entry for entry in entries(CODEGEN)}
    if backend not in found:
        raise SpecError(
            f"no code generator for backend '{backend}' (code generators: "
            f"{', '.join(sorted(found)) or 'none installed'})",
            hint=did_you_mean(backend, found),
        )
    return load_entry(found[backend])


def _source_name(analysed: AnalysedGraph, source: str | Path | None) -> str:
    """What the header says the code came from: `source`, else the spec's file."""
    if source is not None:
        return str(source)
    inputs = analysed.graph.inputs
    return analysed.graph[inputs[0]].location.file if inputs else "<spec>"


def program(
    analysed: AnalysedGraph,
    backend: str,
    source: str | Path | None = None,
    line_length: int = LINE_LENGTH,
) -> Program:
    """The program the backend's printer renders (for tests and other printers)."""
    printer = printer_for(backend)
    require_rules(analysed, backend)
    for node in analysed.graph.nodes:
        printer.check_node_name(node)
    return build_program(analysed, printer, _source_name(analysed, source), line_length)


def generate(
    analysed: AnalysedGraph,
    backend: str,
    source: str | Path | None = None,
    line_length: int = LINE_LENGTH,
) -> str:
    """The Python module for `analysed` in the backend's framework, formatted as ruff
    formats it at `line_length`; `source` is the file named in its header (default: the
    spec's). It is compiled with `compile()` before it is returned."""
    made = program(analysed, backend, source, line_length)
    text = printer_for(backend).render(made)
    try:
        compile(text, f"<xgraph codegen of {analysed.name}>", "exec")
    except SyntaxError as exc:  # a bug in a printer, never the user's: say so plainly
        raise RuntimeError(f"generated {backend} code does not compile: {exc}") from exc
    return text
