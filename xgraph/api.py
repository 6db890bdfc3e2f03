"""The Python API: everything the CLI does, callable without it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from xgraph.backend.names import check_backend_names
from xgraph.budgets import Budgets, active_budgets
from xgraph.errors import SpecError, did_you_mean
from xgraph.files import check_output, spec_inputs
from xgraph.ir.analysis import AnalysedGraph
from xgraph.spec.compile import SectionCompiler, compile_source
from xgraph.spec.extends import load_yaml
from xgraph.spec.params import parse_overrides
from xgraph.spec.source import Source, parse_yaml
from xgraph.training.search import compile_search
from xgraph.training.section import compile_training

if TYPE_CHECKING:
    from xgraph.passes.optimize import PassReport
    from xgraph.weights.initial import Weights

# The spec's sections beside the graph, and who compiles each.
SECTIONS: Mapping[str, SectionCompiler] = {"training": compile_training, "search": compile_search}


def load(
    path: str | Path, overrides: Sequence[str] = (), budgets: Budgets | None = None
) -> AnalysedGraph:
    """Compile a spec file, with `--set`-style `NAME=VALUE` overrides, into the analysed graph;
    `budgets` are the limits it runs under (default: those in force, xgraph.budgets)."""
    budgets = active_budgets(budgets)
    source = load_yaml(path, budgets)
    analysed = compile_source(source, parse_overrides(overrides, budgets), budgets, SECTIONS)
    return _names_checked(analysed, source)


def loads(
    text: str,
    overrides: Sequence[str] = (),
    file: str = "<string>",
    budgets: Budgets | None = None,
) -> AnalysedGraph:
    """Compile spec text held in memory."""
    budgets = active_budgets(budgets)
    source = parse_yaml(text, file, budgets)
    analysed = compile_source(source, parse_overrides(overrides, budgets), budgets, SECTIONS)
    return _names_checked(analysed, source)


def _names_checked(analysed: AnalysedGraph, source: Source) -> AnalysedGraph:
    """The graph, once every installed backend is known to take its node and model names,
    so that whatever `validate` accepts builds (xgraph.backend.names)."""
    check_backend_names(analysed, source.where.value(("name",)))
    return analysed


def load_with_weights(
    path: str | Path,
    overrides: Sequence[str] = (),
    weights_file: str | Path | None = None,
    seed: int | None = None,
    initializer: str | None = None,
    outputs: Sequence[str] = (),
    accept_bad_values: bool = False,
    budgets: Budgets | None = None,
) -> tuple[AnalysedGraph, Weights]:
    """A spec ready to build: the analysed graph, restricted to `outputs` if given, and its
    weights, read from `weights_file` (checked against the whole graph) or initialised.
    `accept_bad_values` loads a file's NaN or infinite values, negative variances and
    non-float tensors instead of refusing it."""
    from xgraph.weights.initial import initial_weights

    analysed = load(path, overrides, budgets)
    if weights_file is not None:
        from xgraph.weights.formats import read_weights

        weights = read_weights(weights_file, analysed, accept_bad_values)
    else:
        weights = initial_weights(analysed, seed=seed, scheme=initializer)
    if outputs:
        for name in outputs:
            if name not in analysed.graph:
                raise SpecError(
                    f"--outputs: no node named '{name}'",
                    hint=did_you_mean(name, analysed.graph.names),
                )
        analysed = analysed.with_outputs(tuple(outputs))
        kept = {node.name for node in analysed.graph.nodes}
        weights = {key: value for key, value in weights.items() if key.split("/")[0] in kept}
    return analysed, weights


def load_backends(
    analysed: AnalysedGraph, names: Sequence[str], options: Mapping[str, str] | None = None
) -> list:
    """The named backends, once every one of them is known to lower every node: a missing
    rule is reported at its node before a framework is even imported. `options` (build
    choices such as the ONNX layout) go to every named backend."""
    from xgraph.backend import available_backends, load_backend
    from xgraph.backend.rules import require_rules

    for name in names:
        if name in available_backends():
            require_rules(analysed, name)
    return [load_backend(name, options) for name in names]


@dataclass(frozen=True)
class Built:
    """What `build` wrote: the file, the backend, the graph it holds, and how long it took."""

    path: Path
    backend: str
    analysed: AnalysedGraph
    seconds: float
    passes: tuple[PassReport, ...] = ()  # the inference passes that ran, in order
    layout: str = ""


def build(
    path: str | Path,
    backend: str,
    output: str | Path | None = None,
    overrides: Sequence[str] = (),
    weights_file: str | Path | None = None,
    seed: int | None = None,
    initializer: str | None = None,
    outputs: Sequence[str] = (),
    optimize: bool | Sequence[str] = False,
    options: Mapping[str, str] | None = None,
    progress: Callable[[str], None] = lambda message: None,
    accept_bad_values: bool = False,
    budgets: Budgets | None = None,
) -> Built:
    """Compile a spec and save it as a model with `backend`, as `xgraph build` does; the
    default output is the spec's name with the backend's suffix, in the current folder.

    `optimize` makes an inference build: True runs every pass of `xgraph.passes.optimize`,
    a list of names runs those. `options` are the backend's build options.
    `accept_bad_values` and `budgets`: as for `load_with_weights` and `load`."""
    started = time.perf_counter()
    read = [("the spec", path), ("the --weights file", weights_file)]
    if output is not None:  # refused before any work: not an input, a place for a file
        check_output(output, read)
    analysed, weights = load_with_weights(
        path, overrides, weights_file, seed, initializer, outputs, accept_bad_values, budgets
    )
    ran: tuple[PassReport, ...] = ()
    if optimize:
        from xgraph.passes.optimize import optimize as run_passes

        optimized = run_passes(analysed, weights, None if optimize is True else list(optimize))
        analysed, weights, ran = optimized.analysed, optimized.weights, optimized.ran
    (chosen,) = load_backends(analysed, [backend], options)
    if output is None:
        target = Path(re.sub(r"[^\w.-]", "_", analysed.name) + chosen.file_suffix)
        progress(f"no -o given: writing {target} in the current folder")
    else:
        target = Path(output)
    if target.suffix != chosen.file_suffix:
        raise SpecError(
            f"the {chosen.name} backend writes {chosen.file_suffix} files, not '{target.name}'",
            hint=f"use -o {target.stem}{chosen.file_suffix}",
        )
    plan = check_output(
        target if output is None else output,
        [*read, *spec_inputs(path, analysed.graph.source_files())],
    )
    progress(
        f"[{time.perf_counter() - started:5.1f}s] building {analysed.name} "
        f"({len(analysed.graph)} nodes) with {chosen.name}"
    )
    model = chosen.build(analysed, weights)
    progress(f"[{time.perf_counter() - started:5.1f}s] saving {target}")
    if note := plan.folders_note():
        progress(note)
    chosen.save(model, analysed, target)
    seconds = time.perf_counter() - started
    return Built(target, chosen.name, analysed, seconds, ran, chosen.layout)


def codegen(
    analysed: AnalysedGraph,
    backend: str,
    source: str | Path | None = None,
    line_length: int = 88,
) -> str:
    """The analysed graph as one standalone Python module for `backend` (torch, keras), as
    `xgraph codegen` writes it: formatted for `line_length` columns; `source` is the file its
    header names (default: the spec's, `<string>` for `loads`). Needs no spec file."""
    from xgraph.codegen import generate

    return generate(analysed, backend, source, line_length)
