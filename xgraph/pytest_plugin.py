"""A pytest plugin: spec files collected as tests, so users get in their own suites the checks
xgraph runs on its own specs.

Enabled wherever xgraph is installed (entry point `pytest11`); it collects nothing until told
where the specs are, with `--xgraph-specs DIR` (repeatable) or the ini option `xgraph_specs`.
For each `*.yaml` spec there it makes the items `validate`, `parity` (parameters read off
every backend's model against the analysis) and `numeric[A-B]` for every pair of backends
(every node's output for the same weights and input). A failure names the first node that
diverges, as `xgraph parity` does.

Options (command line, or ini without the dashes and with underscores):
`--xgraph-backends keras,torch` (default: every installed backend), `--xgraph-set NAME=VALUE`
(applied to the specs that declare NAME, for instance a smaller input for speed),
`--xgraph-tol` (default 1e-4) and `--xgraph-batch` (default 1).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from xgraph.errors import SpecError


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("xgraph", "xgraph spec checks")
    group.addoption("--xgraph-specs", action="append", default=[], metavar="DIR")
    group.addoption("--xgraph-backends", default=None, metavar="A,B")
    group.addoption("--xgraph-set", action="append", default=[], metavar="NAME=VALUE")
    group.addoption("--xgraph-tol", type=float, default=None)
    group.addoption("--xgraph-batch", type=int, default=None)
    parser.addini("xgraph_specs", "folders of spec files to check", type="paths", default=[])
    parser.addini("xgraph_backends", "backends to check (default: all installed)", default="")
    parser.addini("xgraph_set", "NAME=VALUE overrides for specs that declare NAME", type="linelist")
    parser.addini("xgraph_tol", "relative tolerance of the numeric check", default="1e-4")
    parser.addini("xgraph_batch", "batch of the numeric check", default="1")


def _folders(config: pytest.Config) -> list[Path]:
    given = [Path(folder).resolve() for folder in config.getoption("xgraph_specs")]
    return given + [Path(folder).resolve() for folder in config.getini("xgraph_specs")]


def _setting(config: pytest.Config, name: str) -> Any:
    value = config.getoption(name)
    return value if value not in (None, []) else config.getini(name)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix != ".yaml":
        return None
    folders = _folders(parent.config)
    if any(file_path.resolve().parent == folder for folder in folders):
        return SpecFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    """Add the spec folders to what pytest collects: those given with --xgraph-specs always,
    those of the ini file when pytest runs its default paths (not one file a developer
    named on the command line)."""
    config = session.config
    folders = [Path(folder).resolve() for folder in config.getoption("xgraph_specs")]
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        folders += [Path(folder).resolve() for folder in config.getini("xgraph_specs")]
    for folder in folders:
        if str(folder) not in config.args:
            config.args.append(str(folder))


class SpecFailure(Exception):
    """A check of a spec failed: `report` is what `xgraph parity` would print."""

    def __init__(self, report: str) -> None:
        super().__init__(report)
        self.report = report


class SpecFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        yield SpecItem.from_parent(self, name="validate", check="validate")
        yield SpecItem.from_parent(self, name="parity", check="parity")
        for first, second in itertools.combinations(_backends(self.config), 2):
            yield SpecItem.from_parent(
                self, name=f"numeric[{first}-{second}]", check="numeric", pair=(first, second)
            )


def _backends(config: pytest.Config) -> list[str]:
    from xgraph.backend import available_backends

    named = _setting(config, "xgraph_backends")
    if named:
        return [name.strip() for name in str(named).split(",") if name.strip()]
    return available_backends()


class SpecItem(pytest.Item):
    def __init__(self, *, check: str, pair: tuple[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.pair = pair

    def _analysed(self) -> Any:
        from xgraph.api import load
        from xgraph.spec.compile import validate_structure
        from xgraph.spec.source import load_yaml

        declared = validate_structure(load_yaml(self.path)).params
        overrides = [
            item
            for item in _setting(self.config, "xgraph_set") or []
            if item.partition("=")[0].strip() in declared
        ]
        return load(self.path, overrides)

    def runtest(self) -> None:
        from xgraph.backend import load_backend
        from xgraph.init import random_weights
        from xgraph.parity import check_numeric_parity, check_param_parity

        try:
            analysed = self._analysed()
        except SpecError as exc:
            raise SpecFailure(exc.format()) from None
        if self.check == "validate":
            return
        weights = random_weights(analysed, seed=0)
        if self.check == "parity":
            backends = [load_backend(name) for name in _backends(self.config)]
            report = check_param_parity(analysed, weights, backends)
        else:
            report = check_numeric_parity(
                analysed,
                weights,
                [load_backend(name) for name in self.pair],
                tolerance=float(_setting(self.config, "xgraph_tol")),
                batch=int(_setting(self.config, "xgraph_batch")),
            )
        if not report.agrees:
            raise SpecFailure(report.table())

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> str:
        if isinstance(excinfo.value, SpecFailure):
            return excinfo.value.report
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.path.name}::{self.name}"
