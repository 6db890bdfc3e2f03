"""The backend protocol: what every backend package offers the core (build, read and write
weights, predict, save). Each backend is checked against it (tests/typing_conformance.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from xgraph.backend.rules import OpRule
from xgraph.ir.analysis import AnalysedGraph
from xgraph.weights.initial import Weights


class Backend(Protocol):
    """What every backend offers. Models take and return the framework's own tensors; the
    numpy helpers take and return channels-last (N, H, W, C) arrays, as the spec does.

    `rules` holds the backend's rule for each op it lowers (`xgraph.backend.rules.op_rules`):
    built-in and plugin ops alike, each an `OpRule`. What a rule lowers a node to is the
    backend's own business (layer calls for torch and Keras, ONNX nodes for onnx); where it
    keeps each weight is a `WeightSlot`; code generation has its own protocol for it
    (`xgraph.codegen.Printer`)."""

    name: str
    file_suffix: str
    # Choices a user may make when building (`xgraph build --option NAME=VALUE`), each with
    # its allowed values, default first: passed to the backend's constructor as keywords.
    options: Mapping[str, tuple[str, ...]]
    # Where the backend lays tensors out: the IR is layout-free, so this is each backend's
    # own choice for its runtime, reported by `xgraph build`.
    layout: str

    @property
    def rules(self) -> Mapping[str, OpRule]: ...

    def build(self, analysed: AnalysedGraph, weights: Weights | None = None) -> Any:
        """A ready model; `weights` are canonical, and the default is a seeded initialisation.
        A node whose op the backend cannot lower is a located error before anything is built
        (`xgraph.backend.rules.require_rules`)."""
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

    def load(self, path: Path) -> Any:
        """A model file `save` wrote, ready for `predict` (`xgraph predict`): no spec needed."""
        ...
