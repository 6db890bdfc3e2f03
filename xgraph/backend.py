"""The backend protocol, and finding installed backends through entry points.

A backend is a package of its own registered under the `xgraph.backends` entry-point group,
so a new framework (ONNX, JAX) is added without changing the core.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from xgraph.analysis import AnalysedGraph
from xgraph.errors import SpecError, did_you_mean
from xgraph.init import Weights
from xgraph.plugins import BACKENDS, entries, installed_backends, load_entry


class Backend(Protocol):
    """What every backend offers. Models take and return the framework's own tensors; the
    numpy helpers take and return channels-last (N, H, W, C) arrays, as the spec does.

    `rules` holds the backend's rule for each op it lowers (`xgraph.rules.op_rules`): built-in
    and plugin ops alike. What a rule lowers a node to is the backend's own business (layer
    calls for torch and Keras, ONNX nodes for onnx); code generation has its own protocol
    for it (`xgraph.codegen.Printer`)."""

    name: str
    file_suffix: str
    rules: Mapping[str, Any]
    # Choices a user may make when building (`xgraph build --option NAME=VALUE`), each with
    # its allowed values, default first: passed to the backend's constructor as keywords.
    options: Mapping[str, tuple[str, ...]]
    # Where the backend lays tensors out: the IR is layout-free, so this is each backend's
    # own choice for its runtime, reported by `xgraph build`.
    layout: str

    def build(self, analysed: AnalysedGraph, weights: Weights | None = None) -> Any:
        """A ready model; `weights` are canonical, and the default is a seeded initialisation.
        A node whose op the backend cannot lower is a located error before anything is built
        (`xgraph.rules.require_rules`)."""
        ...

    def get_weights(self, model: Any, analysed: AnalysedGraph) -> Weights: ...

    def set_weights(self, model: Any, analysed: AnalysedGraph, weights: Weights) -> None: ...

    def node_param_counts(self, model: Any, analysed: AnalysedGraph) -> dict[str, tuple[int, int]]:
        """(trainable, non-trainable) element counts per graph node, read off the model."""
        ...

    def predict(self, model: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Inference on channels-last numpy inputs; outputs channels-last."""
        ...

    def save(self, model: Any, analysed: AnalysedGraph, path: Path) -> None: ...


def available_backends() -> list[str]:
    return installed_backends()


def load_backend(name: str, options: Mapping[str, str] | None = None) -> Backend:
    """Import the named backend (this is where torch or tensorflow gets imported), made
    with the build `options` it declares."""
    found = {entry.name: entry for entry in entries(BACKENDS)}
    if name not in found:
        known = ", ".join(sorted(found)) or "none installed"
        raise SpecError(
            f"unknown backend '{name}' (backends: {known})", hint=did_you_mean(name, found)
        )
    backend_class = load_entry(found[name])
    declared: Mapping[str, tuple[str, ...]] = getattr(backend_class, "options", {})
    for option, value in (options or {}).items():
        if option not in declared:
            offered = ", ".join(sorted(declared)) or "none"
            raise SpecError(
                f"the {name} backend has no option '{option}' (its options: {offered})",
                hint=did_you_mean(option, declared),
            )
        if value not in declared[option]:
            raise SpecError(
                f"the {name} backend's option {option} is one of "
                f"{', '.join(declared[option])}, not '{value}'",
                hint=did_you_mean(value, declared[option]),
            )
    return backend_class(**(options or {}))


def parse_options(pairs: Sequence[str]) -> dict[str, str]:
    """`NAME=VALUE` strings (from `--option`) as a dict; a name given twice is an error."""
    options: dict[str, str] = {}
    for pair in pairs:
        option, equals, value = pair.partition("=")
        if not equals or not option.strip() or not value.strip():
            raise SpecError(f"--option takes NAME=VALUE, not '{pair}'")
        if option.strip() in options:
            raise SpecError(f"--option {option.strip()} is given twice")
        options[option.strip()] = value.strip()
    return options
