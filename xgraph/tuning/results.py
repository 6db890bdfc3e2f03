"""What a study leaves in OUT for people: the trials as a table (trials.csv, trials.jsonl:
number, state, validation accuracy, epochs, seconds, the values tried, why a trial failed),
Optuna's plots as PNG, and the best trial as a spec that `extends` the searched one and sets
the values it chose (so `xgraph diff` shows what the search changed), beside its trained
weights."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from xgraph.files import write_atomically
from xgraph.spec.params import parse_overrides
from xgraph.training.checkpoint import latest_checkpoint

PLOTS = {
    "history.png": "plot_optimization_history",
    "importances.png": "plot_param_importances",
    "intermediate.png": "plot_intermediate_values",
}


def reason_of(trial: Any) -> str:
    """Why a trial failed: its worker stopped, or what its run said ("" if it did not)."""
    return str(trial.user_attrs.get("stopped") or trial.user_attrs.get("reason", ""))


def trial_rows(study: Any) -> list[dict[str, Any]]:
    rows = []
    for trial in study.get_trials(deepcopy=False):
        seconds = None
        if trial.datetime_start and trial.datetime_complete:
            seconds = round((trial.datetime_complete - trial.datetime_start).total_seconds(), 2)
        rows.append(
            {
                "number": trial.number,
                "state": trial.state.name.lower(),
                "val_accuracy": trial.value,
                "epochs": len(trial.intermediate_values),
                "seconds": seconds,
                **{f"param:{k}": v for k, v in trial.params.items()},
                "reason": reason_of(trial),
            }
        )
    return rows


def write_table(study: Any, out: Path) -> list[Path]:
    rows = trial_rows(study)
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    lines = [json.dumps(row) for row in rows]
    write_atomically(out / "trials.jsonl", ("\n".join(lines) + "\n").encode())
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, columns)
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(out / "trials.csv", table.getvalue().encode())
    return [out / "trials.csv", out / "trials.jsonl"]


def write_plots(study: Any, out: Path) -> tuple[list[Path], list[str]]:
    """Optuna's matplotlib plots that the study's trials make; a plot they cannot make
    (importances need two complete trials that differ) is named with the reason."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as plots
    from optuna.exceptions import ExperimentalWarning

    written, skipped = [], []
    for name, function in PLOTS.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                axes = getattr(plots, function)(study)
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            skipped.append(f"{name}: {exc}")
            continue
        figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        figure.savefig(out / name, dpi=80)
        plt.close(figure)
        written.append(out / name)
    return written, skipped


def _nest(values: dict[str, Any]) -> dict[str, Any]:
    """`training.optimizer.learning_rate: x` as `{optimizer: {learning_rate: x}}`."""
    nested: dict[str, Any] = {}
    for name, value in values.items():
        parts = name.split(".")[1:]
        target = nested
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return nested


def best_spec_text(
    spec: Path, target: Path, sets: Sequence[str], trial: Any, study_name: str
) -> str:
    """A spec that extends `spec` with the `--set` values of the study and the best trial's
    values: parameters as new defaults, training settings merged into its recipe."""
    values = {o.name: o.value for o in parse_overrides(list(sets))}
    values.update(trial.params)
    params = {k: {"default": v} for k, v in values.items() if not k.startswith("training.")}
    training = _nest({k: v for k, v in values.items() if k.startswith("training.")})
    try:
        base = os.path.relpath(spec.resolve(), target.resolve().parent)
    except ValueError:  # another drive
        base = str(spec.resolve())
    body: dict[str, Any] = {"xgraph": 1, "extends": base}
    if params:
        body["params"] = params
    if training:
        body["training"] = training
    header = [
        f"# The best trial of the study '{study_name}' (xgraph tune): trial {trial.number},",
        f"# validation accuracy {trial.value:.4f}; its trained weights are beside this file. It",
        f"# trained with {trial.user_attrs.get('threads', '?')} thread(s) (OMP_NUM_THREADS, "
        "TF_NUM_INTRAOP_THREADS): `xgraph train` with as many gives its numbers again.",
        f"# `xgraph diff {spec} {target.name}` shows what the search changed.",
    ]
    text = yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=100)
    return "\n".join(header) + "\n" + text


def write_best(
    spec: Path, out: Path, sets: Sequence[str], study: Any, study_name: str
) -> tuple[Path, Path | None]:
    """best.yaml and, where its trial's run is in OUT, best.safetensors."""
    trial = study.best_trial
    target = out / "best.yaml"
    write_atomically(target, best_spec_text(spec, target, sets, trial, study_name).encode())
    checkpoint = latest_checkpoint(Path(trial.user_attrs.get("out", "")))
    trained = checkpoint / "weights.safetensors" if checkpoint is not None else None
    if trained is None or not trained.is_file():
        return target, None
    weights = out / "best.safetensors"
    shutil.copyfile(trained, weights)
    return target, weights
