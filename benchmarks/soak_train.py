"""Soak test of data-parallel training: `xgraph train --nproc 2` run again and again, in each
backend, on image folders whose validation sets leave a replica a short or an empty share.

Run: `.venv/bin/python benchmarks/soak_train.py [--runs 30] [--backends torch,keras]`. Every
run must exit 0 and leave every artifact (the exported model, its canonical weights, the
checkpoint named by `latest`, metrics.jsonl with one line per epoch); the script prints each
failure's last lines and the figures per backend, and exits 1 if any run failed.
tests/test_train_soak.py runs a reduced form (a run per folder and backend) in `make test`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from xgraph.training.checkpoint import latest_checkpoint
from xgraph.training.loop import METRICS, artifacts

ROOT = Path(__file__).resolve().parent.parent
# The backends' file_suffix, written here so that the soak's own process imports no framework.
SUFFIXES = {"torch": ".pt2", "keras": ".keras"}

SPEC = """\
xgraph: 1
name: soak
inputs: [{name: image, shape: [16, 16, 3]}]
nodes:
  - {name: conv, op: conv2d, filters: 6, kernel_size: 3, strides: 2, padding: same,
     use_bias: false}
  - {name: conv_bn, op: batch_norm, momentum: 0.9}
  - {name: act, op: activation, activation: relu}
  - {name: gap, op: global_avg_pool}
  - {name: logits, op: dense, units: 3, activation: softmax}
training:
  optimizer: {name: sgd, learning_rate: 0.1, momentum: 0.9}
  batch_size: 2
  epochs: 2
  validation_split: 0.2
"""


@dataclass(frozen=True)
class Folder:
    """An image folder and the batch that gives its validation set the shares we want."""

    name: str
    per_class: int
    batch: int
    shares: str  # what the validation batches give the two replicas, for the report


# 3 classes: 5 per class validates 3 images (batches of 2: 1+1, then 1+0, an empty share);
# 7 per class validates 3 images (a batch of 4 holding 3: 2+1) and trains 18 in batches of
# 4 (4 steps, 2 images left out), so the training set does not divide either.
FOLDERS = (
    Folder("empty_share", per_class=5, batch=2, shares="1+1, 1+0"),
    Folder("uneven_share", per_class=7, batch=4, shares="2+1"),
)


def write_folder(root: Path, folder: Folder, seed: int = 0) -> Path:
    """Random 16x16 PNGs, `folder.per_class` in each of 3 class folders."""
    rng = np.random.default_rng(seed)
    data = root / folder.name
    for label in range(3):
        (data / f"class{label}").mkdir(parents=True, exist_ok=True)
        for index in range(folder.per_class):
            pixels = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(data / f"class{label}" / f"{index}.png")
    return data


@dataclass(frozen=True)
class Outcome:
    """One run: its exit status, wall time, and what it should have written but did not."""

    status: int
    seconds: float
    missing: tuple[str, ...]
    output: str

    @property
    def ok(self) -> bool:
        return self.status == 0 and not self.missing


def missing_artifacts(out: Path, backend: str, epochs: int) -> tuple[str, ...]:
    """What a finished run lacks of what it writes (xgraph.training.loop.artifacts: model,
    weights, checkpoint, metrics), the checkpoint's weights, or a metrics line per epoch."""
    found = artifacts(out, "soak", SUFFIXES[backend])
    missing = [item.what for item in found if not item.written]
    checkpoint = latest_checkpoint(out)
    if checkpoint is not None and not (checkpoint / "weights.safetensors").is_file():
        missing.append(f"{checkpoint.name}/weights.safetensors")
    if (out / METRICS).is_file():
        lines = (out / METRICS).read_text().splitlines()
        if [json.loads(line)["epoch"] for line in lines] != list(range(1, epochs + 1)):
            missing.append(f"metrics of epochs 1-{epochs}")
    return tuple(missing)


def run_once(spec: Path, data: Path, folder: Folder, backend: str, out: Path) -> Outcome:
    command = [
        sys.executable,
        *("-m", "xgraph", "train", str(spec), "--backend", backend, "--data", str(data)),
        *("--batch", str(folder.batch), "--nproc", "2", "--out", str(out)),
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    missing = missing_artifacts(out, backend, epochs=2)
    return Outcome(done.returncode, seconds, missing, done.stdout + done.stderr)


def soak(backend: str, runs: int, work: Path, folders: Sequence[Folder] = FOLDERS) -> list[Outcome]:
    """`runs` runs of `backend`, cycling through `folders`."""
    work.mkdir(parents=True, exist_ok=True)
    spec = work / "soak.yaml"
    spec.write_text(SPEC)
    datas = [write_folder(work / "data", folder) for folder in folders]
    outcomes = []
    for index in range(runs):
        folder, data = folders[index % len(folders)], datas[index % len(folders)]
        out = work / "runs" / f"{backend}-{index}"
        outcome = run_once(spec, data, folder, backend, out)
        if not outcome.ok:
            print(
                f"{backend} run {index + 1} ({folder.name}): status {outcome.status}, "
                f"missing {list(outcome.missing)}\n{outcome.output[-2000:]}",
                file=sys.stderr,
            )
        outcomes.append(outcome)
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="runs per backend (default 30)")
    parser.add_argument("--backends", default="torch,keras")
    args = parser.parse_args()
    failed = 0
    with tempfile.TemporaryDirectory(prefix="xgraph-soak-") as work:
        for backend in args.backends.split(","):
            outcomes = soak(backend, args.runs, Path(work) / backend)
            good = sum(outcome.ok for outcome in outcomes)
            seconds = [outcome.seconds for outcome in outcomes]
            failed += len(outcomes) - good
            print(
                f"{backend}: {good}/{len(outcomes)} runs exited 0 with every artifact; "
                f"wall per run: median {statistics.median(seconds):.1f} s, "
                f"max {max(seconds):.1f} s"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
