"""One trial: `xgraph train` with the trial's values as `--set`, in a process of its own (its
memory returned when it ends; a crash is this trial's failure, not the study's), watched
through the metrics it appends after each epoch: each validation accuracy is reported, and a
trial the pruner stops is ended there."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xgraph.threads import share_environment

METRIC = "val_accuracy"  # maximised
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class TrainCommand:
    """What every trial trains: the spec, the backend, the data, the user's own `--set`."""

    spec: Path
    backend: str
    data: Path
    sets: tuple[str, ...] = ()
    processes: int = 1  # trials running at once on this machine: each gets its CPU share

    @property
    def threads(self) -> int:
        return int(share_environment(self.processes)["OMP_NUM_THREADS"])

    def argv(self, out: Path, values: Sequence[str]) -> list[str]:
        sets = [word for text in (*self.sets, *values) for word in ("--set", text)]
        return [
            sys.executable,
            "-m",
            "xgraph",
            "train",
            str(self.spec),
            "--backend",
            self.backend,
            "--data",
            str(self.data),
            "--out",
            str(out),
            "--no-export",
            # its loading threads: the trial's share of the cores, as its compute threads
            "--workers",
            str(self.threads),
            *sets,
        ]


@dataclass
class TrialOutcome:
    state: str  # "complete", "pruned" or "failed"
    value: float | None = None
    epochs: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    seconds: float = 0.0


def _die_with_parent() -> None:
    """The training process is killed when the worker that started it dies (SIGKILL
    included), so no trial trains on for a study that stopped watching it."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the process outlives a killed worker
        pass


def _new_records(path: Path, seen: int) -> list[dict[str, Any]]:
    """The complete lines of `path` after the first `seen`."""
    if not path.is_file():
        return []
    lines = path.read_text().split("\n")[:-1]  # the last one may be half written
    return [json.loads(line) for line in lines[seen:] if line.strip()]


def _reason(log: Path) -> str:
    """Why a training process failed: its error line, else its last line."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line or "Error" in line]
    return (errors or lines or ["it wrote nothing"])[-1][:500]


def run_trial(
    command: TrainCommand,
    values: Sequence[str],
    out: Path,
    report: Callable[[int, float], bool],
    alive: Callable[[], None],
) -> TrialOutcome:
    """Train with `values` (`NAME=VALUE` each) into `out`. `report(epoch, metric)` is told
    each epoch's validation accuracy and answers whether to prune; `alive()` is called while
    it trains (the worker's heartbeat)."""
    out.mkdir(parents=True, exist_ok=True)
    log = out / "train.log"
    metrics = out / "metrics.jsonl"
    env = {**os.environ, **share_environment(command.processes)}
    start = time.monotonic()
    outcome = TrialOutcome("complete")
    with log.open("w") as written:
        process = subprocess.Popen(
            command.argv(out, values),
            stdout=written,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_die_with_parent,
        )
        try:
            while True:
                finished = process.poll() is not None
                for record in _new_records(metrics, len(outcome.epochs)):
                    outcome.epochs.append(record)
                    metric = record.get(METRIC)
                    if metric is None:
                        continue
                    prune = report(int(record["epoch"]), float(metric))
                    if prune and not finished:
                        process.terminate()
                        process.wait()
                        outcome.state, outcome.value = "pruned", float(metric)
                        outcome.seconds = time.monotonic() - start
                        return outcome
                if finished:
                    break
                alive()
                time.sleep(POLL_SECONDS)
        finally:
            if process.poll() is None:  # the worker itself is stopping
                process.kill()
                process.wait()
    outcome.seconds = time.monotonic() - start
    last = outcome.epochs[-1].get(METRIC) if outcome.epochs else None
    if process.returncode != 0:
        outcome.state, outcome.reason = "failed", _reason(log)
    elif last is None:
        outcome.state = "failed"
        outcome.reason = "no validation accuracy (training.validation_split is 0?)"
    else:
        outcome.value = float(last)
    return outcome
