"""The Python API: everything the CLI does, callable without it."""

from __future__ import annotations

from collections.abc import Sequence
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
