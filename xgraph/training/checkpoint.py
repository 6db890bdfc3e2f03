"""Checkpoints a run can continue from, and that any other xgraph command can read.

`OUT/checkpoint-STEP/` holds the weights as canonical safetensors (`build --weights` reads
them), the optimizer's state (in its framework's own terms, so a run resumes in the backend that
wrote it) and `state.json` (where in the run it was taken, and the serving record: class names
and preprocessing, xgraph.training.serving). `OUT/latest` names the newest
complete one and is replaced in one step only after that folder is whole: a run stopped at any
moment, by Ctrl-C or a kill, leaves `latest` pointing at a usable checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xgraph.ir.analysis import AnalysedGraph
from xgraph.training.recipe import recipe_of
from xgraph.training.serving import Serving
from xgraph.training.trainer import StepMetrics
from xgraph.weights.canonical import expected_shapes, write_canonical
from xgraph.weights.checks import WeightFileError
from xgraph.weights.formats import read_weights
from xgraph.weights.initial import Weights

LATEST = "latest"
KEEP = 2  # checkpoints kept: the newest and the one before it
_FORMAT = "xgraph-checkpoint"


def graph_fingerprint(analysed: AnalysedGraph) -> str:
    """What a checkpoint must match: the names and shapes of every weight of the graph."""
    shapes = sorted(expected_shapes(analysed).items())
    return hashlib.sha256(json.dumps(shapes).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Position:
    """Where a run stands: `step` optimizer steps done in all, `epoch` the epoch in progress
    (`batch` of its batches done), and the running sums of that epoch's training metrics."""

    epoch: int
    batch: int
    step: int
    loss_sum: float = 0.0
    correct: int = 0
    count: int = 0

    @classmethod
    def within(cls, epoch: int, batch: int, step: int, totals: StepMetrics) -> Position:
        """Mid-epoch, with the epoch's training metrics so far."""
        return cls(epoch, batch, step, totals.loss_sum, totals.correct, totals.count)

    @property
    def totals(self) -> StepMetrics:
        return StepMetrics(self.loss_sum, self.correct, self.count)


@dataclass(frozen=True)
class Checkpoint:
    folder: Path
    position: Position
    weights: Weights
    optimizer_state: dict[str, np.ndarray]


def save_checkpoint(
    out: Path,
    analysed: AnalysedGraph,
    backend: str,
    position: Position,
    weights: Weights,
    optimizer_state: Mapping[str, np.ndarray],
    serving: Serving | None = None,
) -> Path:
    """Write a checkpoint folder, then point `latest` at it; older ones beyond KEEP go.
    `serving` (the class names and preprocessing) makes the run self-describing."""
    from safetensors.numpy import save_file

    folder = out / f"checkpoint-{position.step}"
    partial = out / f".{folder.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    write_canonical(partial / "weights.safetensors", analysed, weights)
    state = {key: np.array(value, order="C") for key, value in optimizer_state.items()}  # 0-d kept
    save_file(state, str(partial / "optimizer.safetensors"), metadata={"backend": backend})
    record = {
        "format": _FORMAT,
        "spec": analysed.name,
        "graph": graph_fingerprint(analysed),
        "backend": backend,
        "recipe": recipe_of(analysed).model_dump(),
        "position": asdict(position),
    }
    if serving is not None:
        record["serving"] = serving.as_dict()
    (partial / "state.json").write_text(json.dumps(record, indent=2) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    pointer = out / f".{LATEST}.partial-{os.getpid()}"
    pointer.write_text(folder.name + "\n")
    os.replace(pointer, out / LATEST)
    _prune(out, keep={folder.name})
    return folder


def _prune(out: Path, keep: set[str]) -> None:
    folders = sorted(
        (p for p in out.glob("checkpoint-*") if p.name.removeprefix("checkpoint-").isdigit()),
        key=lambda p: int(p.name.removeprefix("checkpoint-")),
    )
    for old in folders[:-KEEP]:
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(out: Path) -> Path | None:
    """The folder `OUT/latest` names, or None when the run has none yet."""
    pointer = out / LATEST
    if not pointer.is_file():
        return None
    return out / pointer.read_text().strip()


def load_checkpoint(out: Path, analysed: AnalysedGraph, backend: str) -> Checkpoint:
    """The newest checkpoint of `out`, checked to be of this spec's graph and this backend."""
    folder = latest_checkpoint(out)
    if folder is None:
        raise WeightFileError(
            out,
            "no checkpoint to resume from (no 'latest' file)",
            hint="train without --resume first, with the same --out",
        )
    state_file = folder / "state.json"
    try:
        record: dict[str, Any] = json.loads(state_file.read_text())
        position = Position(**record["position"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WeightFileError(state_file, f"not a readable checkpoint state: {exc}") from None
    if record.get("graph") != graph_fingerprint(analysed):
        raise WeightFileError(
            state_file,
            f"the checkpoint is of spec '{record.get('spec')}', whose weights differ from those "
            f"of '{analysed.name}' (with the --set given)",
            hint="resume with the spec and --set values the run was started with",
        )
    if record.get("backend") != backend:
        raise WeightFileError(
            state_file,
            f"the checkpoint was written by the {record.get('backend')} backend: its optimizer "
            f"state resumes there, not in {backend}",
            hint=f"resume with --backend {record.get('backend')}; its weights.safetensors "
            "loads in any backend (build --weights)",
        )
    weights = read_weights(folder / "weights.safetensors", analysed)
    optimizer_state = _read_optimizer_state(folder / "optimizer.safetensors")
    return Checkpoint(folder, position, weights, optimizer_state)


def _read_optimizer_state(path: Path) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return dict(load_file(str(path)))
    except (OSError, SafetensorError) as exc:
        raise WeightFileError(path, f"cannot read the optimizer state: {exc}") from None
