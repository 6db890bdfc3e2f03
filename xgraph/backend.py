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
from xgraph.graph import Node
from xgraph.init import Weights
from xgraph.lowering import LayerCall
from xgraph.plugins import BACKENDS, entries, installed_backends, load_entry


class Backend(Protocol):
    """What every backend offers. Models take and return the framework's own tensors; the
    numpy helpers take and return channels-last (N, H, W, C) arrays, as the spec does.

    `rules` holds the backend's rule for each op it lowers (`xgraph.rules.op_rules`): built-in
    and plugin ops alike."""

    name: str
    file_suffix: str
    rules: Mapping[str, Any]

    def lower(self, analysed: AnalysedGraph, node: Node) -> LayerCall | list[LayerCall] | None:
        """The layer description(s) one node becomes."""
        ...

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


def load_backend(name: str) -> Backend:
    """Import the named backend (this is where torch or tensorflow gets imported)."""
    found = {entry.name: entry for entry in entries(BACKENDS)}
    if name not in found:
        known = ", ".join(sorted(found)) or "none installed"
        raise SpecError(
            f"unknown backend '{name}' (backends: {known})", hint=did_you_mean(name, found)
        )
    return load_entry(found[name])()
