"""The workers of one `xgraph tune` process: each asks the study for a trial, trains it
(xgraph.tuning.trials), tells the study how it ended and prints a line, until the study
holds its number of trials (whichever process of whichever machine ran them) or the time is
up. Trials of workers that stopped are failed first and not counted, so another runs in
their place."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xgraph.training.search import SearchSpace, set_text
from xgraph.tuning.study import HEARTBEAT_SECONDS, counted, fail_stopped_trials, worker_id
from xgraph.tuning.trials import TrainCommand, run_trial


@dataclass
class Plan:
    study: Any
    space: SearchSpace
    command: TrainCommand
    out: Path
    trials: int
    deadline: float | None = None  # time.monotonic() after which no trial starts
    printing: threading.Lock = field(default_factory=threading.Lock)


def _suggest(trial: Any, space: SearchSpace) -> dict[str, Any]:
    values = {}
    for name, dim in space.dimensions.items():
        if dim.choice is not None:
            values[name] = trial.suggest_categorical(name, dim.choice)
        elif dim.int_range is not None:
            low, high = dim.int_range
            step = int(dim.step or 1)
            values[name] = trial.suggest_int(name, low, high, step=step, log=dim.log)
        else:
            low_f, high_f = dim.float_range or (0.0, 1.0)
            values[name] = trial.suggest_float(name, low_f, high_f, step=dim.step, log=dim.log)
    return values


def _say(plan: Plan, text: str) -> None:
    with plan.printing:
        print(text, flush=True)


def run_one(plan: Plan) -> bool:
    """One trial, start to end; False when the study needs no more."""
    from optuna.trial import TrialState

    for number in fail_stopped_trials(plan.study):
        _say(plan, f"trial {number} failed: its worker stopped; another runs in its place")
    if counted(plan.study) >= plan.trials:
        return False
    if plan.deadline is not None and time.monotonic() > plan.deadline:
        return False
    trial = plan.study.ask()
    out = plan.out / "trials" / f"{trial.number:04d}"
    trial.set_user_attr("worker", worker_id())
    trial.set_user_attr("heartbeat", time.time())
    trial.set_user_attr("out", str(out.resolve()))
    trial.set_user_attr("threads", plan.command.threads)
    values = _suggest(trial, plan.space)
    shown = " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
    )
    last_beat = [time.monotonic()]

    def report(epoch: int, metric: float) -> bool:
        trial.report(metric, epoch)
        return bool(trial.should_prune())

    def alive() -> None:
        if time.monotonic() - last_beat[0] >= HEARTBEAT_SECONDS:
            trial.set_user_attr("heartbeat", time.time())
            last_beat[0] = time.monotonic()

    sets = [set_text(name, value) for name, value in values.items()]
    outcome = run_trial(plan.command, sets, out, report, alive)
    if outcome.state == "complete":
        plan.study.tell(trial, outcome.value)
        said = f"val_accuracy {outcome.value:.4f}"
    elif outcome.state == "pruned":
        plan.study.tell(trial, state=TrialState.PRUNED)
        said = f"pruned at epoch {len(outcome.epochs)} (val_accuracy {outcome.value:.4f})"
    else:
        trial.set_user_attr("reason", outcome.reason)
        plan.study.tell(trial, state=TrialState.FAIL)
        said = f"failed: {outcome.reason}"
    _say(plan, f"trial {trial.number} {said}: {shown} ({outcome.seconds:.1f} s)")
    return True


def run_workers(plan: Plan, workers: int) -> None:
    """`workers` threads, each running trials until the study needs no more; an error of
    one (not a trial's: those are failed trials) stops this process's work after the
    trials running end."""
    errors: list[BaseException] = []

    def work() -> None:
        try:
            while not errors and run_one(plan):
                pass
        except BaseException as exc:  # handed to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)  # trial numbers in start order
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:
        errors.append(KeyboardInterrupt())
        print("stopping: the running trials end as failed", file=sys.stderr)
        raise
    if errors:
        raise errors[0]
