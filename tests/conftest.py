"""Shared fixtures: the repository's paths, the CLI run in-process, the analysed Xception spec."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from xgraph.analysis import AnalysedGraph
from xgraph.api import load
from xgraph.cli import main

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
XCEPTION = SPECS / "xception.yaml"


@dataclass(frozen=True)
class CliResult:
    """What one in-process run of the `xgraph` command returned and printed."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


CliRunner = Callable[..., CliResult]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """Run `xgraph ARGS...` through `xgraph.cli.main`, capturing its exit status and output."""

    def run(*args: str | Path) -> CliResult:
        capsys.readouterr()
        code = main([str(arg) for arg in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository's root: the CLI's subprocesses run there."""
    return ROOT


@pytest.fixture(scope="session")
def xception_path() -> Path:
    return XCEPTION


@pytest.fixture(scope="session")
def xception() -> AnalysedGraph:
    """specs/xception.yaml with its default parameters, compiled once per session."""
    return load(XCEPTION)


@pytest.fixture(scope="session")
def dot_program() -> str:
    """Graphviz's `dot`, which `make test` installs; its absence is a failure, not a skip."""
    program = shutil.which("dot")
    assert program, "Graphviz's 'dot' is not on PATH: install graphviz (apt-get install graphviz)"
    return program


def import_source(source: str, directory: Path, name: str) -> Any:
    """Generated source written to a file and imported from there (tests of codegen)."""
    path = directory / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
