"""`xgraph train`: train a spec's model on an image folder, in one process or, with --nproc,
in several local replicas started with the command line the parser saw (`args.argv`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from xgraph.cli.common import (
    SPEC_HELP,
    add_command,
    add_set,
    byte_size,
    natural_int,
    positive_int,
)
from xgraph.training.placement import DEVICE_FORMS, PRECISIONS, Placement


def _without_nproc(argv: Sequence[str]) -> list[str]:
    """The command line a replica runs: this one without `--nproc N`."""
    kept: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word == "--nproc":
            skip = True
        elif not word.startswith("--nproc="):
            kept.append(word)
    return kept


def add_train(commands: argparse._SubParsersAction) -> None:
    train = add_command(
        commands,
        "train",
        "train the spec's model on an image folder",
        """
        Trains by the spec's 'training:' recipe (optimizer, schedule, L2 weight decay, label
        smoothing, batch size, epochs: docs/training.md), changed with --set
        training.KEY=VALUE, on DIR/CLASS/IMAGE files decoded with Pillow and resized to the
        spec's input. A share of each class is held out for validation. OUT receives a
        checkpoint at each epoch's end (canonical weights.safetensors, the optimizer's state,
        state.json), metrics.jsonl (a line per epoch), and at the end the model as 'xgraph
        build' writes it plus its weights. Ctrl-C leaves the newest complete checkpoint;
        --resume continues from it to the same result. --nproc N trains data-parallel in N
        local processes (torch DistributedDataParallel with gloo, or tf.distribute's
        MultiWorkerMirroredStrategy); under torchrun or with TF_CONFIG set, each process is
        one replica. Before the first step it warns when the run is too short for
        BatchNorm's moving statistics to forget their initial values (then validation and
        the exported model score as if untrained), and names the fix.
        """,
        """
        xgraph train specs/xception.yaml --backend torch --data digits/ --set classes=10
        xgraph train small.yaml --backend keras --data digits/ --epochs 5 --batch 64 --out run/
        xgraph train small.yaml --backend keras --data digits/ --out run/ --resume
        xgraph train small.yaml --backend torch --data digits/ --nproc 2
        """,
    )
    train.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    train.add_argument("--backend", required=True, metavar="NAME", help="torch or keras")
    train.add_argument(
        "--data",
        required=True,
        metavar="DIR",
        help="an image folder: one sub-folder per class (its name is the class), images in it",
    )
    train.add_argument(
        "--epochs",
        type=positive_int,
        metavar="N",
        help="epochs to train; default: the recipe's (training.epochs)",
    )
    train.add_argument(
        "--batch",
        dest="train_batch",
        type=positive_int,
        metavar="B",
        help="the global batch, split over the processes; default: training.batch_size",
    )
    train.add_argument(
        "--out",
        metavar="DIR",
        help="where checkpoints, metrics and the model go; default: runs/SPECNAME-BACKEND",
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its newest checkpoint (same spec and --set)",
    )
    train.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=0,
        metavar="STEPS",
        help="also checkpoint every STEPS optimizer steps within an epoch (default: at each "
        "epoch's end only)",
    )
    train.add_argument(
        "--nproc",
        type=positive_int,
        default=1,
        metavar="N",
        help="train data-parallel in N local processes (default: %(default)s)",
    )
    train.add_argument(
        "--sync-batch-norm",
        action="store_true",
        help="BatchNorm statistics over the whole global batch, not each process's share "
        "(keras only: torch's SyncBatchNorm needs GPUs)",
    )
    train.add_argument(
        "--weights",
        metavar="FILE",
        help="start from these weights (fine-tuning) instead of the recipe's seeded "
        "initialisation; any format build --weights reads",
    )
    add_data_options(train)
    add_placement_options(train)
    train.add_argument(
        "--no-export",
        dest="export",
        action="store_false",
        help="write no model at the end, only the checkpoints (their weights.safetensors): "
        "the trials of xgraph tune",
    )
    add_set(train)
    train.set_defaults(handler=cmd_train)


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """--workers and --cache-bytes: how images are loaded (train and evaluate)."""
    parser.add_argument(
        "--workers",
        type=natural_int,
        metavar="N",
        help="threads decoding images ahead of the step (default: one per core; 0: decode "
        "in the training thread); the batches are the same for any N",
    )
    parser.add_argument(
        "--cache-bytes",
        type=byte_size,
        metavar="SIZE",
        help="keep decoded images in memory up to SIZE (512M, 2G; 0: none; default: 2G)",
    )


def add_placement_options(parser: argparse.ArgumentParser) -> None:
    """--device and --precision (train and evaluate)."""
    parser.add_argument(
        "--device",
        default="auto",
        metavar="DEVICE",
        help=f"{DEVICE_FORMS} (torch; keras: auto, cpu or cuda:N as /GPU:N). auto: a GPU "
        "when the framework sees one (default)",
    )
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=PRECISIONS,
        help="fp32 (default), or mixed: float32 weights, the passes in bfloat16 or float16 "
        "(torch autocast, with loss scaling for fp16; Keras's mixed policies). fp16-mixed "
        "needs a GPU",
    )


def placement_of(args: argparse.Namespace) -> Placement:
    return Placement(args.device, args.precision)


def cache_bytes(args: argparse.Namespace) -> int:
    """--cache-bytes, or the default (its module imports numpy: not at the CLI's start)."""
    from xgraph.training.images import DEFAULT_CACHE_BYTES

    return DEFAULT_CACHE_BYTES if args.cache_bytes is None else args.cache_bytes


def cmd_train(args: argparse.Namespace) -> int:
    from xgraph.training.launch import is_launched_replica, run_local
    from xgraph.training.trainer import check_trainer

    check_trainer(args.backend)
    from xgraph.api import load
    from xgraph.files import check_output_folder
    from xgraph.training.loop import (
        RunConfig,
        TeardownError,
        TrainingInterrupted,
        artifacts,
        check_replicas,
        describe_artifacts,
        train,
    )
    from xgraph.training.recipe import recipe_of
    from xgraph.training.replicas import Replicas, from_environment

    analysed = load(args.spec, args.overrides)
    changes = {"epochs": args.epochs, "batch_size": args.train_batch}
    changes = {key: value for key, value in changes.items() if value is not None}
    if changes:
        analysed = analysed.with_section("training", recipe_of(analysed).model_copy(update=changes))
    out = Path(args.out) if args.out else Path("runs") / f"{analysed.name}-{args.backend}"
    check_output_folder(out, [("the training data", args.data)])
    if args.nproc > 1 and not is_launched_replica():  # said once, before any process starts
        check_replicas(analysed, Replicas(0, args.nproc))

        def say_what_was_written() -> None:
            found = artifacts(out, analysed.name)
            print(f"  {out}: {describe_artifacts(found)}", file=sys.stderr)

        # args.argv: the command line main parsed (Parser.parse_words), run by each replica
        return run_local(args.nproc, args.backend, _without_nproc(args.argv), say_what_was_written)
    config = RunConfig(
        data=Path(args.data),
        out=out,
        backend=args.backend,
        resume=args.resume,
        checkpoint_every=args.checkpoint_every,
        sync_batch_norm=args.sync_batch_norm,
        weights=Path(args.weights) if args.weights else None,
        export=args.export,
        workers=args.workers,
        cache_bytes=cache_bytes(args),
        placement=placement_of(args),
    )
    replicas = from_environment(args.backend)
    try:
        result = train(analysed, config, replicas)
    except TeardownError as error:
        print(f"xgraph train: error: {error}", file=sys.stderr)
        return 1
    except TrainingInterrupted as stop:
        if replicas.is_chief:
            where = (
                f"the newest complete checkpoint is {stop.checkpoint}; continue with --resume"
                if stop.checkpoint
                else "no checkpoint was complete yet"
            )
            print(f"interrupted at step {stop.step}: {where}", file=sys.stderr)
        return 130
    if replicas.is_chief:
        last = result.records[-1] if result.records else {}
        accuracy = last.get("val_accuracy")
        shown = f", validation accuracy {accuracy:.4f}" if accuracy is not None else ""
        print(
            f"trained {analysed.name} ({args.backend}, {replicas.world_size} process"
            f"{'es' if replicas.world_size > 1 else ''}): {len(result.records)} "
            f"epoch{'' if len(result.records) == 1 else 's'}{shown}"
        )
        written = [result.model_path, result.weights_path, result.onnx_path]
        if any(written):
            print(f"wrote {', '.join(str(path) for path in written if path is not None)}")
        print(f"  checkpoint: {result.checkpoint}")
        print(f"  metrics: {config.out / 'metrics.jsonl'}")
    return 0
