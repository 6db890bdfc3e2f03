"""The Python API: everything the CLI does, callable without it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from xgraph.analysis import AnalysedGraph
from xgraph.errors import SpecError, did_you_mean
from xgraph.spec.compile import compile_source
from xgraph.spec.params import parse_overrides
from xgraph.spec.source import load_yaml, parse_yaml

if TYPE_CHECKING:
    from xgraph.init import Weights


def load(path: str | Path, overrides: Sequence[str] = ()) -> AnalysedGraph:
    """Compile a spec file, with `--set`-style `NAME=VALUE` overrides, into the analysed graph."""
    return compile_source(load_yaml(path), parse_overrides(overrides))


def loads(text: str, overrides: Sequence[str] = (), file: str = "<string>") -> AnalysedGraph:
    """Compile spec text held in memory."""
    return compile_source(parse_yaml(text, file), parse_overrides(overrides))


def load_with_weights(
    path: str | Path,
    overrides: Sequence[str] = (),
    weights_file: str | Path | None = None,
    seed: int | None = None,
    initializer: str | None = None,
    outputs: Sequence[str] = (),
) -> tuple[AnalysedGraph, Weights]:
    """A spec ready to build: the analysed graph, restricted to `outputs` if given, and its
    weights, read from `weights_file` (checked against the whole graph) or initialised."""
    from xgraph.init import initial_weights

    analysed = load(path, overrides)
    if weights_file is not None:
        from xgraph.weights.formats import read_weights

        weights = read_weights(weights_file, analysed)
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


def load_backends(analysed: AnalysedGraph, names: Sequence[str]) -> list:
    """The named backends, once every one of them is known to lower every node: a missing
    rule is reported at its node before a framework is even imported."""
    from xgraph.backend import available_backends, load_backend
    from xgraph.rules import require_rules

    for name in names:
        if name in available_backends():
            require_rules(analysed, name)
    return [load_backend(name) for name in names]


@dataclass(frozen=True)
class Built:
    """What `build` wrote: the file, the backend, the graph it holds, and how long it took."""

    path: Path
    backend: str
    analysed: AnalysedGraph
    seconds: float


def build(
    path: str | Path,
    backend: str,
    output: str | Path | None = None,
    overrides: Sequence[str] = (),
    weights_file: str | Path | None = None,
    seed: int | None = None,
    initializer: str | None = None,
    outputs: Sequence[str] = (),
    fold_batch_norm: bool = False,
    progress: Callable[[str], None] = lambda message: None,
) -> Built:
    """Compile a spec and save it as a model with `backend`, as `xgraph build` does; the
    default output is the spec's name with the backend's suffix, in the current folder."""
    started = time.perf_counter()
    analysed, weights = load_with_weights(path, overrides, weights_file, seed, initializer, outputs)
    if fold_batch_norm:
        from xgraph.passes.fold_batch_norm import fold_batch_norm as fold

        analysed, weights = fold(analysed, weights)
    (chosen,) = load_backends(analysed, [backend])
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
    progress(
        f"[{time.perf_counter() - started:5.1f}s] building {analysed.name} "
        f"({len(analysed.graph)} nodes) with {chosen.name}"
    )
    model = chosen.build(analysed, weights)
    progress(f"[{time.perf_counter() - started:5.1f}s] saving {target}")
    chosen.save(model, analysed, target)
    return Built(target, chosen.name, analysed, time.perf_counter() - started)
