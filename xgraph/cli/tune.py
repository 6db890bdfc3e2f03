"""`xgraph tune`: search a spec's parameters and training recipe (its `search:` section)
with Optuna; each trial an `xgraph train` run in its own process."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from xgraph.cli.common import SPEC_HELP, add_command, add_set, positive_int


def add_tune(commands: argparse._SubParsersAction) -> None:
    tune = add_command(
        commands,
        "tune",
        "search the spec's parameters and training recipe (its 'search:') with Optuna",
        """
        Each trial trains the spec (xgraph train) with values the sampler (TPE) picks from
        the spec's 'search:' section, in a process of its own, and reports each epoch's
        validation accuracy, which the pruner may stop it on. The study lives in a journal
        file in OUT (several processes on one machine), or in the database --storage names
        (several machines: run the same command, with the same --study and --storage, on
        each). Running the command again resumes the study until it holds --trials trials;
        the trials of a worker that stopped are failed and run again by another. OUT then
        holds trials.csv and trials.jsonl, the plots (PNG), best.yaml (a spec that extends
        SPEC with the best trial's values: `xgraph diff SPEC OUT/best.yaml`) and
        best.safetensors, its trained weights. `optuna-dashboard sqlite:///... ` or the
        journal file shows the study live. Exit status 1 when no trial completed.
        """,
        """
        xgraph tune tiny.yaml --backend torch --data digits/ --trials 16 --out tune/
        xgraph tune tiny.yaml --backend keras --data digits/ --trials 16 --workers 2
        xgraph tune tiny.yaml --backend torch --data digits/ --trials 64 --study wide \\
            --storage postgresql://tuner:secret@db.example/xgraph
        """,
    )
    tune.add_argument("spec", metavar="SPEC", help=SPEC_HELP + ", with a 'search:' section")
    tune.add_argument("--backend", required=True, metavar="NAME", help="torch or keras")
    tune.add_argument("--data", required=True, metavar="DIR", help="the image folder to train on")
    tune.add_argument(
        "--trials", type=positive_int, required=True, metavar="N", help="trials in the study"
    )
    tune.add_argument(
        "--timeout", type=float, metavar="S", help="start no trial after S seconds (this process)"
    )
    tune.add_argument("--study", metavar="NAME", help="the study's name (default: the spec's)")
    tune.add_argument(
        "--storage",
        metavar="URL",
        help="a SQLAlchemy URL (postgresql://..., mysql://...) or a .journal file "
        "(default: OUT/study.journal)",
    )
    tune.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        metavar="K",
        help="trials this process trains at once, sharing the CPUs (default: 1)",
    )
    tune.add_argument(
        "--pruner", choices=("median", "hyperband", "none"), default="median", help="(median)"
    )
    tune.add_argument(
        "--out", metavar="DIR", help="where the study's files go (default: runs/SPECNAME-tune)"
    )
    tune.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="seed the sampler: with one worker, the same trials run after run (default: none)",
    )
    add_set(tune)
    tune.set_defaults(handler=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from xgraph.api import load
    from xgraph.files import check_output_folder
    from xgraph.training.trainer import check_trainer
    from xgraph.tuning.checks import check_search, search_of

    check_trainer(args.backend)
    analysed = load(args.spec, args.overrides)
    space = search_of(analysed, args.spec)
    check_search(args.spec, args.overrides, analysed, space)
    out = Path(args.out) if args.out else Path("runs") / f"{analysed.name}-tune"
    check_output_folder(out, [("the training data", args.data)])
    return _tune(args, analysed, space, out)


def _tune(args: argparse.Namespace, analysed: Any, space: Any, out: Path) -> int:
    import optuna

    from xgraph.training.recipe import recipe_of
    from xgraph.tuning.runner import Plan, run_workers
    from xgraph.tuning.study import load_study, make_pruner, open_storage, shown_url
    from xgraph.tuning.trials import TrainCommand

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per trial is ours
    out.mkdir(parents=True, exist_ok=True)
    name = args.study or analysed.name
    storage = open_storage(args.storage, out)
    epochs = recipe_of(analysed).epochs
    study = load_study(
        storage,
        name,
        space.describe(),
        make_pruner(args.pruner, epochs),
    )
    command = TrainCommand(
        Path(args.spec), args.backend, Path(args.data), tuple(args.overrides), args.workers
    )
    deadline = time.monotonic() + args.timeout if args.timeout else None
    where = shown_url(args.storage) if args.storage else str(out / "study.journal")
    print(f"study '{name}' in {where}: {args.trials} trials, {args.workers} at a time here")
    plan = Plan(study, space, command, out, args.trials, deadline)
    run_workers(plan, args.workers)
    return _report(args, study, out, name)


def _report(args: argparse.Namespace, study: Any, out: Path, name: str) -> int:
    from optuna.trial import TrialState

    from xgraph.tuning.results import reason_of, write_best, write_plots, write_table

    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    tally = ", ".join(
        f"{states.count(s)} {s.name.lower()}"
        for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)
        if states.count(s)
    )
    print(f"study '{name}': {len(trials)} trials ({tally})")
    written = write_table(study, out)
    if TrialState.COMPLETE not in states:
        shown = next((r for r in map(reason_of, trials) if r), "none completed")
        print(
            f"xgraph tune: error: no trial completed; the first failure: {shown}", file=sys.stderr
        )
        print(f"  the trials: {written[0]}", file=sys.stderr)
        return 1
    plots, skipped = write_plots(study, out)
    best = study.best_trial
    spec, weights = write_best(Path(args.spec), out, args.overrides, study, name)
    print(f"best: trial {best.number}, val_accuracy {best.value:.4f}: {best.params}")
    print(f"wrote {spec}" + (f", {weights}" if weights else " (its weights are on its worker)"))
    print(f"  table: {', '.join(str(p) for p in written)}")
    print(f"  plots: {', '.join(str(p) for p in plots) or 'none'}")
    for line in skipped:
        print(f"  not plotted: {line}")
    return 0
