"""What a run shows while it trains: a redrawn line per step on a terminal, a line per epoch
always, and each epoch's metrics as one JSON line in OUT/metrics.jsonl."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

LIVE_MARK = "XGRAPH_PROGRESS_LIVE"  # set by the --nproc launcher (xgraph.training.launch)


class Progress:
    """The progress bar of one epoch: loss, accuracy and throughput so far."""

    def __init__(self, epochs: int, steps: int, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        # A replica under `--nproc` writes into the launcher's pipe, which says whether its
        # own standard error is a terminal.
        self.live = self.stream.isatty() or os.environ.get(LIVE_MARK) == "1"
        self.epochs = epochs
        self.steps = steps

    def step(self, epoch: int, done: int, loss: float, accuracy: float, rate: float) -> None:
        if not self.live:
            return
        width = 24
        filled = width * done // max(1, self.steps)
        bar = "=" * filled + (">" if filled < width else "") + " " * (width - filled - 1)
        self.stream.write(
            f"\repoch {epoch + 1}/{self.epochs} [{bar[:width]}] {done}/{self.steps} "
            f"loss {loss:.4f} accuracy {accuracy:.4f} {rate:,.0f} images/s "
        )
        self.stream.flush()

    def epoch(self, record: dict[str, Any]) -> None:
        if self.live:
            self.stream.write("\r\033[K")
        validation = ""
        if record.get("val_loss") is not None:
            validation = (
                f" | validation loss {record['val_loss']:.4f} accuracy {record['val_accuracy']:.4f}"
            )
            top_k = [key for key in record if key.startswith("val_top")]
            if top_k:  # val_top5_accuracy: more classes than 5
                validation += f" top-{top_k[0][len('val_top') : -len('_accuracy')]} "
                validation += f"{record[top_k[0]]:.4f}"
        self.stream.write(
            f"epoch {record['epoch']}/{self.epochs}: loss {record['loss']:.4f} "
            f"accuracy {record['accuracy']:.4f}{validation} | "
            f"{record['images_per_second']:,.0f} images/s, {record['seconds']:.1f} s\n"
        )
        self.stream.flush()


class Throughput:
    """Images per second over the steps timed so far."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.images = 0

    def add(self, images: int) -> None:
        self.images += images

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start

    @property
    def rate(self) -> float:
        return self.images / max(self.seconds, 1e-9)


def append_metrics(path: Path, record: dict[str, Any]) -> None:
    """One epoch's metrics, appended as a line of JSON."""
    with path.open("a") as file:
        file.write(json.dumps(record) + "\n")
