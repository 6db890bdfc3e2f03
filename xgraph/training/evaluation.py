"""Measuring a model on held-out images: the epoch's validation in `xgraph train` and the
whole of `xgraph evaluate` run this one function, so the two report the same numbers for the
same weights and images."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from xgraph.ir.analysis import AnalysedGraph
from xgraph.training.data import DataError, epoch_batches, scan_image_folder, split
from xgraph.training.images import DEFAULT_CACHE_BYTES, ImageLoader
from xgraph.training.pipeline import Pipeline, default_workers
from xgraph.training.placement import DEFAULT_PLACEMENT, Placement
from xgraph.training.recipe import recipe_of
from xgraph.training.replicas import Replicas
from xgraph.training.trainer import NO_METRICS, TOP_K, StepMetrics, Trainer, load_trainer
from xgraph.weights.initial import Weights

Split = Literal["all", "validation", "train"]


def evaluate_images(
    trainer: Trainer,
    pipeline: Pipeline,
    labels: np.ndarray,
    indices: np.ndarray,
    batch_size: int,
    replicas: Replicas,
) -> StepMetrics:
    """Inference-mode metrics over the images at `indices`, in order, in batches of
    `batch_size` (the last one short), each split over the replicas."""
    totals = NO_METRICS
    batches = epoch_batches(indices, batch_size, 0, 0, drop_last=False, shuffle=False)
    shares = [batch[replicas.share(len(batch))] for batch in batches]
    for share, images in zip(shares, pipeline.batches(shares), strict=True):
        totals += trainer.evaluate(images, labels[share])
    return totals


def shows_top_k(classes: int) -> bool:
    """Top-k accuracy says something only with more classes than k (else it is 1)."""
    return classes > TOP_K


def epoch_record(
    epoch: int,
    step: int,
    rate: float,
    totals: StepMetrics,
    validation: StepMetrics | None,
    classes: int,
    images: int,
    seconds: float,
) -> dict[str, Any]:
    """One line of metrics.jsonl: the epoch's training loss and accuracy (means over its
    steps), validation's (top-k too, with more than TOP_K classes), and the training steps'
    `images` in `seconds` (validation not counted; a resumed epoch's from the resume)."""
    record: dict[str, Any] = {
        "epoch": epoch + 1,
        "step": step,
        "learning_rate": rate,
        "loss": totals.loss,
        "accuracy": totals.accuracy,
        "val_loss": validation.loss if validation else None,
        "val_accuracy": validation.accuracy if validation else None,
    }
    if shows_top_k(classes):
        record[f"val_top{TOP_K}_accuracy"] = validation.top_k_accuracy if validation else None
    record["images_per_second"] = images / max(seconds, 1e-9)
    record["seconds"] = seconds
    return record


def check_classes(analysed: AnalysedGraph, classes: int, data: Path) -> None:
    """The model gives one score per class folder of `data`, or a DataError says how not."""
    output = analysed.graph.outputs[0]
    shape = analysed.shapes[output]
    if len(shape) != 1 or shape[0] != classes:
        hint = f"--set classes={classes}" if "classes" in analysed.params else None
        raise DataError(
            data,
            f"{classes} class folders, but the model '{analysed.name}' gives output "
            f"'{output}' of shape {tuple(shape)}: training needs one score per class",
            hint=hint,
        )


@dataclass(frozen=True)
class Evaluation:
    """What `xgraph evaluate` measured: the metrics (per class too) and how fast."""

    classes: tuple[str, ...]
    metrics: StepMetrics
    seconds: float
    where: str

    @property
    def images_per_second(self) -> float:
        return self.metrics.count / max(self.seconds, 1e-9)

    def as_json(self) -> dict[str, Any]:
        """The report as `--json` prints it: totals, then a row per class."""
        metrics = self.metrics

        def share(part: int, whole: int) -> float | None:
            return part / whole if whole else None

        return {
            "images": metrics.count,
            "loss": metrics.loss,
            "top1_accuracy": metrics.accuracy,
            f"top{TOP_K}_accuracy": metrics.top_k_accuracy,
            "images_per_second": self.images_per_second,
            "seconds": self.seconds,
            "device": self.where,
            "classes": [
                {
                    "name": name,
                    "images": count,
                    "top1_accuracy": share(correct, count),
                    f"top{TOP_K}_accuracy": share(top, count),
                }
                for name, count, correct, top in zip(
                    self.classes,
                    metrics.class_counts,
                    metrics.class_correct,
                    metrics.class_top_k,
                    strict=True,
                )
            ],
        }


def evaluate_folder(
    analysed: AnalysedGraph,
    weights: Weights,
    data: Path,
    backend: str,
    which: Split = "all",
    batch_size: int | None = None,
    placement: Placement = DEFAULT_PLACEMENT,
    workers: int | None = None,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
) -> Evaluation:
    """The model with `weights` measured on the image folder `data`: all of it, or the side of
    the recipe's split (its validation_split and seed) that `which` names, in batches of the
    recipe's batch size unless given. Through the backend's trainer in inference mode, as the
    validation of `xgraph train`: same images, weights and batches give the same numbers."""
    recipe = recipe_of(analysed)
    folder = scan_image_folder(data)
    check_classes(analysed, len(folder.classes), data)
    if which == "all":
        indices = np.arange(len(folder), dtype=np.int64)
    else:
        train, validation = split(folder, recipe.validation_split, recipe.seed)
        indices = validation if which == "validation" else train
        if not len(indices):
            raise DataError(
                data,
                f"the {which} split holds no image (validation_split {recipe.validation_split})",
            )
    trainer = load_trainer(backend)(analysed, weights, recipe, Replicas(), False, placement)
    loader = ImageLoader(folder, analysed.input_shapes()[0], cache_bytes)
    labels = np.asarray(folder.labels, dtype=np.int64)
    started = time.perf_counter()
    with Pipeline(loader, default_workers() if workers is None else workers) as pipeline:
        metrics = evaluate_images(
            trainer, pipeline, labels, indices, batch_size or recipe.batch_size, Replicas()
        )
    seconds = time.perf_counter() - started
    trainer.close()
    return Evaluation(folder.classes, metrics, seconds, trainer.where)
