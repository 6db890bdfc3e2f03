"""`xgraph evaluate`: a spec's model with trained weights measured on an image folder: top-1
and top-5 accuracy, loss, images per second, and a table per class."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from xgraph.cli.common import SPEC_HELP, add_command, add_set, positive_int
from xgraph.cli.train import add_data_options, add_placement_options, cache_bytes, placement_of


def add_evaluate(commands: argparse._SubParsersAction) -> None:
    evaluate = add_command(
        commands,
        "evaluate",
        "measure trained weights on an image folder: top-1, top-5, loss, per class",
        """
        Runs the spec's model with --weights (any format build --weights reads: a run's
        SPEC.safetensors, a checkpoint's weights.safetensors, a .keras or .h5 file) in
        inference mode over DIR, laid out as for 'xgraph train' (DIR/CLASS/IMAGE), with the
        images resized as validation sees them (no augmentation). --split validation measures
        the images 'xgraph train' held out (the recipe's validation_split and seed, --set
        included) in the recipe's batches: the accuracy of the run's last epoch, exactly.
        The loss is the one training reports: cross-entropy plus the L2 term.
        """,
        """
        xgraph evaluate small.yaml --weights run/small.safetensors --data val/ --backend torch
        xgraph evaluate small.yaml --weights run/small.safetensors --data digits/ --split validation
        xgraph evaluate small.yaml --weights w.safetensors --data val/ --json
        """,
    )
    evaluate.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    evaluate.add_argument("--weights", required=True, metavar="FILE", help="the trained weights")
    evaluate.add_argument(
        "--data", required=True, metavar="DIR", help="an image folder: a sub-folder per class"
    )
    evaluate.add_argument("--backend", default="torch", metavar="NAME", help="torch or keras")
    evaluate.add_argument(
        "--split",
        choices=("all", "validation", "train"),
        default="all",
        help="every image of DIR (default), or one side of the recipe's split",
    )
    evaluate.add_argument(
        "--batch",
        dest="eval_batch",
        type=positive_int,
        metavar="B",
        help="images per batch; default: training.batch_size (as training's validation)",
    )
    add_data_options(evaluate)
    add_placement_options(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_set(evaluate)
    evaluate.set_defaults(handler=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from xgraph.training.trainer import check_trainer

    check_trainer(args.backend)
    from xgraph.api import load
    from xgraph.training.evaluation import evaluate_folder
    from xgraph.training.trainer import TOP_K
    from xgraph.weights.formats import read_weights

    analysed = load(args.spec, args.overrides)
    weights = read_weights(Path(args.weights), analysed)
    result = evaluate_folder(
        analysed,
        weights,
        Path(args.data),
        args.backend,
        args.split,
        args.eval_batch,
        placement_of(args),
        args.workers,
        cache_bytes(args),
    )
    report = {
        "spec": analysed.name,
        "backend": args.backend,
        "precision": args.precision,
        "data": args.data,
        "split": args.split,
        **result.as_json(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    top_k = f"top{TOP_K}_accuracy"
    print(
        f"{analysed.name} ({args.backend} on {report['device']}, {args.precision}): "
        f"{report['images']} images of {args.data}"
        + (f" ({args.split} split)" if args.split != "all" else "")
    )
    print(
        f"  top-1 accuracy {report['top1_accuracy']:.4f}  top-{TOP_K} accuracy "
        f"{report[top_k]:.4f}  loss {report['loss']:.4f}  "
        f"{report['images_per_second']:,.0f} images/s"
    )
    rows = [
        (row["name"], str(row["images"]), row["top1_accuracy"], row[top_k])
        for row in report["classes"]
    ]
    width = max([5, *(len(name) for name, *_ in rows)])
    print(f"  {'class':<{width}}  images  top-1   top-{TOP_K}")
    for name, images, top1, top5 in rows:
        shown = [f"{value:.4f}" if value is not None else "-" for value in (top1, top5)]
        print(f"  {name:<{width}}  {images:>6}  {shown[0]}  {shown[1]}")
    sys.stdout.flush()
    return 0
