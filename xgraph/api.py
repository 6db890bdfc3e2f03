"""The Python API: everything the CLI does, callable without it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xgraph.analysis import AnalysedGraph
from xgraph.spec.compile import compile_source
from xgraph.spec.params import parse_overrides
from xgraph.spec.source import load_yaml, parse_yaml


def load(path: str | Path, overrides: Sequence[str] = ()) -> AnalysedGraph:
    """Compile a spec file, with `--set`-style `NAME=VALUE` overrides, into the analysed graph."""
    return compile_source(load_yaml(path), parse_overrides(overrides))


def loads(text: str, overrides: Sequence[str] = (), file: str = "<string>") -> AnalysedGraph:
    """Compile spec text held in memory."""
    return compile_source(parse_yaml(text, file), parse_overrides(overrides))
