"""The training loop, the same for every backend: data in numpy, one `Trainer` per process.

Data-parallel runs start one process per replica (xgraph.training.launch, or torchrun, or a
TF_CONFIG cluster); every process runs this loop over the same global batches and trains on its
share of each, and the engine exchanges the gradients. Only the chief (rank 0) writes.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from xgraph.backend import load_backend
from xgraph.errors import SpecError
from xgraph.ir.analysis import AnalysedGraph
from xgraph.training.checkpoint import (
    Position,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from xgraph.training.data import DataError, epoch_batches, scan_image_folder, split
from xgraph.training.evaluation import check_classes, epoch_record, evaluate_images
from xgraph.training.images import DEFAULT_CACHE_BYTES, ImageLoader
from xgraph.training.pipeline import Pipeline, default_workers
from xgraph.training.placement import DEFAULT_PLACEMENT, Placement
from xgraph.training.progress import Progress, Throughput, append_metrics
from xgraph.training.recipe import recipe_of
from xgraph.training.replicas import Replicas
from xgraph.training.schedule import learning_rate
from xgraph.training.serving import Serving, serving_of, write_serving
from xgraph.training.settle import settle_warning
from xgraph.training.trainer import NO_METRICS, load_trainer
from xgraph.weights.initial import Weights, initial_weights

METRICS = "metrics.jsonl"


@dataclass(frozen=True)
class RunConfig:
    """What `xgraph train` was asked besides the spec and its recipe."""

    data: Path
    out: Path
    backend: str
    resume: bool = False
    checkpoint_every: int = 0  # steps between checkpoints within an epoch; 0: at epoch ends
    sync_batch_norm: bool = False
    weights: Path | None = None  # start from these instead of the initialisation
    export: bool = True  # write the trained model at the end (the checkpoints hold its weights)
    workers: int | None = None  # threads decoding images; None: one per core, 0: none
    cache_bytes: int = DEFAULT_CACHE_BYTES  # decoded images kept in memory; 0: none
    placement: Placement = DEFAULT_PLACEMENT  # --device and --precision


@dataclass
class RunResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    weights: Weights = field(default_factory=dict)
    model_path: Path | None = None
    weights_path: Path | None = None
    onnx_path: Path | None = None  # the ONNX copy of the model, when the onnx backend exports it
    interrupted: bool = False
    checkpoint: Path | None = None  # the newest complete one


class TrainingInterrupted(Exception):
    """Ctrl-C: the run stopped; `checkpoint` is the newest complete checkpoint (or None)."""

    def __init__(self, checkpoint: Path | None, step: int) -> None:
        super().__init__(f"interrupted at step {step}")
        self.checkpoint = checkpoint
        self.step = step


def check_replicas(analysed: AnalysedGraph, replicas: Replicas) -> None:
    """What a run needs of the model and the processes before it starts any: one output, and
    a global batch that splits evenly."""
    outputs = analysed.graph.outputs
    if len(outputs) != 1:
        raise SpecError(
            f"training needs a model with one output; '{analysed.name}' has {len(outputs)} "
            f"({', '.join(outputs)})"
        )
    batch = recipe_of(analysed).batch_size
    if batch % replicas.world_size:
        raise SpecError(
            f"the batch of {batch} does not split evenly over {replicas.world_size} processes",
            hint="choose a batch size that is a multiple of the number of processes",
        )


def _rewrite_metrics(path: Path, epochs_done: int) -> list[dict[str, Any]]:
    """The metrics of the epochs a resumed run keeps; lines of later epochs (written after
    the checkpoint it resumes from) are dropped, to be written again."""
    if not path.exists():
        return []
    kept = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    kept = [record for record in kept if record.get("epoch", 0) <= epochs_done]
    path.write_text("".join(json.dumps(record) + "\n" for record in kept))
    return kept


def train(
    analysed: AnalysedGraph,
    config: RunConfig,
    replicas: Replicas | None = None,
    stream: TextIO | None = None,
) -> RunResult:
    """Train `analysed` by its recipe on the image folder `config.data`, writing checkpoints,
    metrics and finally the model (as `xgraph build` writes it) into `config.out`."""
    replicas = replicas or Replicas()
    recipe = recipe_of(analysed)
    make_trainer = load_trainer(config.backend)
    backend = load_backend(config.backend)
    check_replicas(analysed, replicas)
    folder = scan_image_folder(config.data)
    check_classes(analysed, len(folder.classes), config.data)
    train_indices, validation_indices = split(folder, recipe.validation_split, recipe.seed)
    steps_per_epoch = len(train_indices) // recipe.batch_size
    if steps_per_epoch == 0:
        raise DataError(
            config.data,
            f"{len(train_indices)} training images make no whole batch of {recipe.batch_size}",
            hint="a smaller --batch",
        )
    warning = settle_warning(analysed, recipe.epochs * steps_per_epoch, steps_per_epoch)
    if warning and replicas.is_chief:  # before the first step, once
        print(f"xgraph train: {warning}", file=sys.stderr)
    loader = ImageLoader(
        folder, analysed.input_shapes()[0], config.cache_bytes, recipe.augment, recipe.seed
    )
    workers = default_workers() if config.workers is None else config.workers
    serving = serving_of(analysed, folder.classes)
    labels = np.asarray(folder.labels, dtype=np.int64)
    classes = len(folder.classes)

    earlier = None if config.resume else latest_checkpoint(config.out)
    if earlier is not None:
        raise DataError(
            config.out,
            f"already holds a training run (its newest checkpoint: {earlier})",
            hint="continue it with --resume, or give another --out",
        )
    position = Position(epoch=0, batch=0, step=0)
    checkpoint = None
    result = RunResult()
    if config.resume:
        checkpoint = load_checkpoint(config.out, analysed, config.backend)
        weights = checkpoint.weights
        position = checkpoint.position
        result.checkpoint = checkpoint.folder
    elif config.weights is not None:
        from xgraph.weights.formats import read_weights

        weights = read_weights(config.weights, analysed)
    else:
        weights = initial_weights(analysed, seed=recipe.seed)
    trainer = make_trainer(
        analysed, weights, recipe, replicas, config.sync_batch_norm, config.placement
    )
    if replicas.is_chief:
        print(
            f"xgraph train: {config.backend} on {trainer.where}, "
            f"{config.placement.precision}, {workers} data worker{'s' * (workers != 1)}",
            file=stream or sys.stderr,
        )
    if checkpoint is not None:
        trainer.load_state(checkpoint.weights, checkpoint.optimizer_state)

    metrics_path = config.out / METRICS
    if replicas.is_chief:
        config.out.mkdir(parents=True, exist_ok=True)
        if config.resume:
            result.records = _rewrite_metrics(metrics_path, position.epoch)
        else:
            metrics_path.unlink(missing_ok=True)
    progress = Progress(recipe.epochs, steps_per_epoch, stream)

    def save(at: Position) -> None:
        if replicas.is_chief:
            result.checkpoint = save_checkpoint(
                config.out,
                analysed,
                config.backend,
                at,
                trainer.weights(),
                trainer.optimizer_state(),
                serving,
            )

    step = position.step
    try:
        with Pipeline(loader, workers) as pipeline:
            for epoch in range(position.epoch, recipe.epochs):
                resumed = epoch == position.epoch
                done = position.batch if resumed else 0
                totals = position.totals if resumed else NO_METRICS
                clock = Throughput()
                batches = epoch_batches(train_indices, recipe.batch_size, epoch, recipe.seed)
                shares = [batch[replicas.share(len(batch))] for batch in batches[done:]]
                loaded = pipeline.batches(shares, epoch)
                for index, share, images in zip(
                    range(done, steps_per_epoch), shares, loaded, strict=True
                ):
                    rate = learning_rate(recipe, step, steps_per_epoch)
                    metrics = trainer.train_step(images, labels[share], rate, step)
                    step += 1
                    clock.add(metrics.count)
                    totals += metrics
                    if replicas.is_chief:
                        progress.step(epoch, index + 1, totals.loss, totals.accuracy, clock.rate)
                    every = config.checkpoint_every
                    if every and step % every == 0 and index + 1 < steps_per_epoch:
                        save(Position.within(epoch, index + 1, step, totals))
                train_seconds = clock.seconds
                if not math.isfinite(totals.loss):
                    raise SpecError(
                        f"the loss became {totals.loss} in epoch {epoch + 1}",
                        hint="a smaller learning rate (--set training.optimizer.learning_rate=...)",
                    )
                validation = (
                    evaluate_images(
                        trainer, pipeline, labels, validation_indices, recipe.batch_size, replicas
                    )
                    if len(validation_indices)
                    else None
                )
                last_rate = learning_rate(recipe, step - 1, steps_per_epoch)
                record = epoch_record(
                    epoch, step, last_rate, totals, validation, classes, clock.images, train_seconds
                )
                result.records.append(record)
                if replicas.is_chief:
                    progress.epoch(record)
                    append_metrics(metrics_path, record)
                save(Position(epoch + 1, 0, step))
    except KeyboardInterrupt:
        raise TrainingInterrupted(result.checkpoint, step) from None

    result.weights = trainer.weights()
    if replicas.is_chief and config.export:
        result.weights_path, result.model_path, result.onnx_path = _export(
            analysed, backend, result.weights, config.out, serving
        )
    # Only now, with everything written, do the replicas leave their group: what fails at
    # teardown can no longer lose the run's results.
    try:
        trainer.close()
    except Exception as error:
        raise TeardownError(
            replicas, artifacts(config.out, analysed.name, backend.file_suffix), error
        ) from error
    return result


@dataclass(frozen=True)
class Artifact:
    """A file or folder a finished run leaves in OUT, and whether it is there."""

    what: str
    path: Path | None

    @property
    def written(self) -> bool:
        return self.path is not None and self.path.exists()


def artifacts(out: Path, name: str, model_suffix: str | None = None) -> list[Artifact]:
    """What a finished run of spec `name` leaves in `out`: the exported model (`name` with
    the backend's suffix; without one, whatever model file is there, the ONNX copy last, so
    that the launcher need not import a framework to report), its canonical weights, the
    newest checkpoint and the metrics."""
    weights = out / f"{name}.safetensors"
    if model_suffix is not None:
        model: Path | None = out / f"{name}{model_suffix}"
    else:
        found = sorted(sorted(out.glob(f"{name}.*")), key=lambda path: path.suffix == ".onnx")
        model = next((path for path in found if path != weights), None)  # the ONNX copy last
    return [
        Artifact("model", model),
        Artifact("weights", weights),
        Artifact("checkpoint", latest_checkpoint(out)),
        Artifact("metrics", out / METRICS),
    ]


def describe_artifacts(found: list[Artifact]) -> str:
    """`wrote: A, B; not written: C` for a report after a failure."""
    written = [str(item.path) for item in found if item.written]
    missing = [
        f"the {item.what}" + (f" ({item.path})" if item.path else "")
        for item in found
        if not item.written
    ]
    parts = [f"written: {', '.join(written)}" if written else "nothing written"]
    if missing:
        parts.append(f"not written: {', '.join(missing)}")
    return "; ".join(parts)


class TeardownError(Exception):
    """Training finished, but leaving the replica group failed: says what the run wrote."""

    def __init__(self, replicas: Replicas, found: list[Artifact], error: Exception) -> None:
        writer = "" if replicas.is_chief else " (rank 0 writes them)"
        super().__init__(
            f"rank {replicas.rank}: training finished, but leaving the data-parallel group "
            f"failed ({type(error).__name__}: {error}); {describe_artifacts(found)}{writer}"
        )


def _export(
    analysed: AnalysedGraph, backend: Any, weights: Weights, out: Path, serving: Serving
) -> tuple[Path, Path, Path | None]:
    """The trained model as `xgraph build` writes it, with the serving record inside, and its
    canonical weights; and the same model as ONNX when that backend is installed (the form
    most serving stacks take), unless some op has no ONNX rule."""
    from xgraph.weights.canonical import write_canonical

    weights_path = out / f"{analysed.name}.safetensors"
    write_canonical(weights_path, analysed, weights)
    model_path = out / f"{analysed.name}{backend.file_suffix}"
    backend.save(backend.build(analysed, weights), analysed, model_path)
    write_serving(model_path, serving)
    if backend.name == "onnx" or not _onnx_exports(analysed):
        return weights_path, model_path, None
    onnx = load_backend("onnx")
    onnx_path = out / f"{analysed.name}{onnx.file_suffix}"
    onnx.save(onnx.build(analysed, weights), analysed, onnx_path)
    write_serving(onnx_path, serving)
    return weights_path, model_path, onnx_path


def _onnx_exports(analysed: AnalysedGraph) -> bool:
    """Whether the onnx backend is installed and lowers every op of the graph."""
    from xgraph.backend.registry import available_backends
    from xgraph.backend.rules import op_rules

    if "onnx" not in available_backends():
        return False
    try:
        rules = op_rules("onnx")
    except (ImportError, SpecError):  # its entry point is there, `onnx` is not (or broken)
        return False
    return all(node.op in rules for node in analysed.graph.nodes)
