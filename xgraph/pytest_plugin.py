"""A pytest plugin: spec files collected as tests, so users get in their own suites the checks
xgraph runs on its own specs.

Enabled wherever xgraph is installed (entry point `pytest11`); it collects nothing until told
where the specs are, with `--xgraph-specs DIR` (repeatable) or the ini option `xgraph_specs`.
For each `*.yaml` spec there it makes the items `validate`, `parity` (parameters read off
every backend's model against the analysis) and `numeric[A-B]` for every pair of backends
(every node's output for the same weights and input). A failure names the first node that
diverges, as `xgraph parity` does.

Each backend builds each spec once per session (per worker under xdist): that one build, with
every node an output, gives both the parameter counts of `parity` and the node outputs that
every `numeric` pair compares. Only the current spec's results are kept, never the models.
The `parity` and `numeric` items are marked `framework` (they import the backends' frameworks),
so `-m "not framework"` keeps the framework-free `validate` items.

Options (command line, or ini without the dashes and with underscores):
`--xgraph-backends keras,torch` (default: every installed backend), `--xgraph-set NAME=VALUE`
(applied to the specs that declare NAME, for instance a smaller input for speed),
`--xgraph-tol` (default 1e-4), `--xgraph-batch` (default 1) and `--xgraph-exclude GLOB`
(repeatable; spec files whose path from the rootdir matches are not collected: thin variants
whose base is checked already, or models too large for every run).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from xgraph.errors import SpecError
from xgraph.threads import take_share

if TYPE_CHECKING:
    # The types of pytest's repr_failure, which pytest does not export.
    from _pytest._code.code import TerminalRepr, TracebackStyle

    from xgraph.reports.parity import NumericReport, ParityReport  # imported by the items that run

FRAMEWORK_MARKER = "framework"
FRAMEWORK_MARKER_HELP = (
    f"{FRAMEWORK_MARKER}: needs a backend's framework (torch, TensorFlow, ONNX Runtime...); "
    "xgraph's parity and numeric spec items carry it"
)


# What this process's pytest_configure set of xgraph.threads' variables (none where the user
# had set them, or outside an xdist worker).
taken_share: dict[str, str] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("xgraph", "xgraph spec checks")
    group.addoption("--xgraph-specs", action="append", default=[], metavar="DIR")
    group.addoption("--xgraph-backends", default=None, metavar="A,B")
    group.addoption("--xgraph-set", action="append", default=[], metavar="NAME=VALUE")
    group.addoption("--xgraph-tol", type=float, default=None)
    group.addoption("--xgraph-batch", type=int, default=None)
    group.addoption("--xgraph-exclude", action="append", default=[], metavar="GLOB")
    parser.addini("xgraph_specs", "folders of spec files to check", type="paths", default=[])
    parser.addini("xgraph_backends", "backends to check (default: all installed)", default="")
    parser.addini("xgraph_set", "NAME=VALUE overrides for specs that declare NAME", type="linelist")
    parser.addini("xgraph_tol", "relative tolerance of the numeric check", default="1e-4")
    parser.addini("xgraph_batch", "batch of the numeric check", default="1")
    parser.addini("xgraph_exclude", "globs of spec files not to collect", type="linelist")


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker the spec items carry, unless the project declares it already
    (a project may use the same word for its own framework tests). Under pytest-xdist each
    worker takes its share of the CPUs before any test imports an engine (xgraph.threads):
    two workers on two cores, each with two OpenMP threads, run training several times slower."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if hasattr(config, "workerinput") and workers.isdigit():
        taken_share.update(take_share(os.environ, int(workers)))
    declared = {line.split(":")[0].strip() for line in config.getini("markers")}
    if FRAMEWORK_MARKER not in declared:
        config.addinivalue_line("markers", FRAMEWORK_MARKER_HELP)


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
        if _excluded(parent.config, file_path):
            return None
        return SpecFile.from_parent(parent, path=file_path)
    return None


def _excluded(config: pytest.Config, file_path: Path) -> bool:
    patterns = [*config.getoption("xgraph_exclude"), *config.getini("xgraph_exclude")]
    try:
        relative = file_path.resolve().relative_to(config.rootpath.resolve())
    except ValueError:
        relative = file_path
    return any(relative.match(pattern) or file_path.match(pattern) for pattern in patterns)


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


@dataclass
class BackendRun:
    """What one build of a spec by one backend gave: the parameter counts read off the model
    and every node's output for the seeded input, or the error that stopped them. Kept
    instead of the model, so a spec's items share the build without holding on to models."""

    counts: dict[str, tuple[int, int]] | None = None
    outputs: dict[str, Any] | None = None
    error: BaseException | None = None

    def result(self, part: str) -> dict[str, Any]:
        """`counts` or `outputs`; else the error that prevented them, a spec error as the
        located report `xgraph parity` prints."""
        value = getattr(self, part)
        if value is not None:
            return value
        if isinstance(self.error, SpecError):
            raise SpecFailure(self.error.format())
        raise self.error or AssertionError(f"no {part} and no error")


class _Capturing:
    """A backend that keeps what it builds, so the probe's one model is also read for counts."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.name = backend.name
        self.built: tuple[Any, Any] | None = None

    def build(self, analysed: Any, weights: Any = None) -> Any:
        model = self.backend.build(analysed, weights)
        self.built = (model, analysed)
        return model

    def predict(self, model: Any, inputs: Sequence[Any]) -> list[Any]:
        return self.backend.predict(model, inputs)

    def counts(self) -> dict[str, tuple[int, int]] | None:
        if self.built is None:
            return None
        model, analysed = self.built
        counted = self.backend.node_param_counts(model, analysed)
        return {name: tuple(pair) for name, pair in counted.items()}


def run_backend(analysed: Any, weights: Any, name: str, batch: int) -> BackendRun:
    """Build the spec once in backend `name` with every node an output (as `xgraph parity
    --numeric` does) and keep the counts and outputs, or what went wrong."""
    from xgraph.backend import load_backend
    from xgraph.reports.parity import probe_every_node

    run = BackendRun()
    backend: _Capturing | None = None
    try:
        backend = _Capturing(load_backend(name))
        run.outputs = probe_every_node(analysed, weights, [backend], batch=batch)[name]
    except Exception as exc:  # kept, and raised by every item that needs this backend
        run.error = exc
    try:
        run.counts = backend.counts() if backend is not None else None
    except Exception as exc:
        run.error = run.error or exc
    return run


@dataclass
class SpecRuns:
    """One spec's analysis (or its error), its weights and each backend's run, made on
    first need: `validate` alone never draws weights or imports a framework."""

    path: Path
    analysed: Any = None
    error: SpecError | None = None
    weights: Any = None
    runs: dict[str, BackendRun] = field(default_factory=dict)

    def run(self, backend: str, batch: int) -> BackendRun:
        if backend not in self.runs:
            if self.weights is None:
                from xgraph.weights.initial import random_weights

                self.weights = random_weights(self.analysed, seed=0)
            self.runs[backend] = run_backend(self.analysed, self.weights, backend, batch)
        return self.runs[backend]


class SpecCache:
    """The runs of the spec being checked, shared by its items in this session. Moving on to
    another spec drops them, so memory holds one spec's outputs, whatever the folder."""

    def __init__(self) -> None:
        self.current: SpecRuns | None = None

    def spec(self, path: Path, load: Callable[[], Any]) -> SpecRuns:
        if self.current is None or self.current.path != path:
            self.current = SpecRuns(path)
            try:
                self.current.analysed = load()
            except SpecError as exc:
                self.current.error = exc
        return self.current


SPEC_CACHE = pytest.StashKey[SpecCache]()


def spec_cache(config: pytest.Config) -> SpecCache:
    """The session's cache, on the config so that every item of a run finds the same one."""
    return config.stash.setdefault(SPEC_CACHE, SpecCache())


class SpecItem(pytest.Item):
    def __init__(self, *, check: str, pair: tuple[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.pair = pair
        if check != "validate":
            self.add_marker(FRAMEWORK_MARKER)

    def _analysed(self) -> Any:
        from xgraph.api import load
        from xgraph.spec.compile import validate_structure
        from xgraph.spec.extends import load_yaml

        declared = validate_structure(load_yaml(self.path)).params
        overrides = [
            item
            for item in _setting(self.config, "xgraph_set") or []
            if item.partition("=")[0].strip() in declared
        ]
        return load(self.path, overrides)

    def _spec(self) -> SpecRuns:
        spec = spec_cache(self.config).spec(self.path, self._analysed)
        if spec.error is not None:
            raise SpecFailure(spec.error.format())
        return spec

    def _results(self, spec: SpecRuns, backends: Sequence[str], part: str) -> dict[str, Any]:
        batch = int(_setting(self.config, "xgraph_batch"))
        return {name: spec.run(name, batch).result(part) for name in backends}

    def runtest(self) -> None:
        from xgraph.reports.parity import numeric_parity, param_parity

        spec = self._spec()
        if self.check == "validate":
            return
        report: ParityReport | NumericReport
        if self.check == "parity":
            counts = self._results(spec, _backends(self.config), "counts")
            report = param_parity(spec.analysed, counts)
        else:
            assert self.pair is not None  # a numeric item is made with its pair
            outputs = self._results(spec, self.pair, "outputs")
            tolerance = float(_setting(self.config, "xgraph_tol"))
            report = numeric_parity(spec.analysed, outputs, tolerance)
        if not report.agrees:
            raise SpecFailure(report.table())

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: TracebackStyle | None = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, SpecFailure):
            return excinfo.value.report
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.path.name}::{self.name}"
