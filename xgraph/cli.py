"""The `xgraph` command: a thin layer over `xgraph.api`.

Nothing here imports torch or tensorflow at start-up; a backend is imported only by the
commands that need it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from xgraph.errors import SpecError

if TYPE_CHECKING:
    from xgraph.analysis import AnalysedGraph

Handler = Callable[[argparse.Namespace], int]


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a spec parameter; VALUE is read as YAML: --set include_top=false, "
        "--set input_shape=[224,224,3] (repeatable)",
    )
    parser.add_argument(
        "--limit",
        dest="limits",
        action="append",
        default=[],
        metavar="NAME=N",
        help="raise (or lower) a safety limit for reading the spec: --limit nodes=100000 "
        "(repeatable; the limits: docs/spec.md, 'Safety limits')",
    )


def _add_accept_bad_values(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--accept-bad-values",
        action="store_true",
        help="load a weights file even with NaN or infinite values, negative BatchNorm "
        "variances or non-float tensors (converted to float32); refused by default",
    )


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    from xgraph.initializers import DEFAULT_INITIALIZER, KERNEL_INITIALIZERS

    _add_set(parser)
    parser.add_argument(
        "--seed", type=int, default=None, help="make the initial weights reproducible"
    )
    parser.add_argument(
        "--init",
        default=None,
        choices=KERNEL_INITIALIZERS,
        metavar="NAME",
        help=f"kernel initialiser: {', '.join(KERNEL_INITIALIZERS)}; default: the spec's "
        f"'initializer', else {DEFAULT_INITIALIZER} (Keras's)",
    )
    parser.add_argument(
        "--weights",
        metavar="FILE",
        help="start from these weights: .safetensors, .pt/.pth, .keras, .weights.h5 or legacy .h5",
    )
    _add_accept_bad_values(parser)
    parser.add_argument(
        "--outputs",
        metavar="NODE,...",
        help="return these nodes' outputs, in this order (feature extraction)",
    )


def cmd_validate(args: argparse.Namespace) -> int:
    from xgraph.api import load

    failed = 0
    for spec in args.specs:  # report every file, not only the first bad one
        try:
            analysed = load(spec, args.overrides)
        except SpecError as exc:
            if args.debug:
                raise
            print(exc.format(), file=sys.stderr)
            failed += 1
            continue
        print(f"{spec}: ok ({len(analysed.graph)} nodes, {analysed.total_params:,} parameters)")
    return 2 if failed else 0


def cmd_summary(args: argparse.Namespace) -> int:
    from xgraph.api import load
    from xgraph.report import summary_dict, summary_table

    analysed = load(args.spec, args.overrides)
    if args.json:
        print(json.dumps(summary_dict(analysed), indent=2))
    else:
        print(summary_table(analysed))
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    from xgraph.api import load
    from xgraph.render import render

    analysed = load(args.spec, args.overrides)
    render(analysed, _checked_output(args, analysed))
    print(f"wrote {args.output}")
    return 0


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _checked_output(
    args: argparse.Namespace, analysed: AnalysedGraph, *inputs: tuple[str, str | None]
) -> Path:
    """`-o`, refused before any work if it would replace an input of the command (the spec,
    a spec it extends, `inputs`) or is no place for a file (xgraph.files); the folders
    writing it will create are announced."""
    from xgraph.files import check_output, spec_inputs

    plan = check_output(args.output, [*spec_inputs(args.spec, analysed), *inputs])
    if note := plan.folders_note():
        _progress(note)
    return plan.path


MAX_PARITY_BATCH = 64  # the numeric check keeps every node's output of every backend


def _check_numbers(args: argparse.Namespace) -> None:
    """Numbers argparse takes as any int or float: NaN, infinities and out-of-range values
    would make a check that cannot fail, or end in a traceback."""
    seed = getattr(args, "seed", None)
    if seed is not None and not 0 <= seed < 2**64:
        raise SpecError(f"--seed must be a whole number from 0 to 2**64 - 1, got {seed}")
    tolerance = getattr(args, "tol", None)
    if tolerance is not None and not (math.isfinite(tolerance) and tolerance >= 0):
        raise SpecError(f"--tol must be a finite number of at least 0, got {tolerance}")
    batch = getattr(args, "batch", None)
    if batch is not None and batch < 1:
        raise SpecError(f"--batch must be at least 1, got {batch}")
    if batch is not None and batch > MAX_PARITY_BATCH:
        raise SpecError(
            f"--batch must be at most {MAX_PARITY_BATCH}, got {batch}: the numeric check keeps "
            "every node's output of every backend"
        )


def _outputs(args: argparse.Namespace) -> list[str]:
    outputs = [name.strip() for name in (args.outputs or "").split(",") if name.strip()]
    if args.outputs is not None and not outputs:
        raise SpecError("--outputs needs at least one node name")
    return outputs


def _load_for_build(args: argparse.Namespace):
    from xgraph.api import load_with_weights

    return load_with_weights(
        args.spec,
        args.overrides,
        args.weights,
        args.seed,
        args.init,
        _outputs(args),
        args.accept_bad_values,
    )


def _passes(args: argparse.Namespace) -> bool | list[str]:
    """--optimize alone runs every inference pass; with names, those; --fold-batch-norm is
    the one pass it was before --optimize existed."""
    if args.optimize is not None:
        names = [name.strip() for name in args.optimize.split(",") if name.strip()]
        return names or True
    return ["fold_batch_norm"] if args.fold_batch_norm else False


def cmd_build(args: argparse.Namespace) -> int:
    from xgraph.api import build
    from xgraph.backend import parse_options

    _check_numbers(args)
    built = build(
        args.spec,
        args.backend,
        args.output,
        args.overrides,
        args.weights,
        args.seed,
        args.init,
        _outputs(args),
        _passes(args),
        parse_options(args.option),
        progress=_progress,
        accept_bad_values=args.accept_bad_values,
    )
    analysed = built.analysed
    outputs = ", ".join(f"{n} {analysed.shapes[n]}" for n in analysed.graph.outputs)
    print(f"wrote {built.path} ({built.backend})")
    print(
        f"  parameters: {analysed.total_params:,} (trainable {analysed.trainable_params:,}, "
        f"non-trainable {analysed.non_trainable_params:,})"
    )
    print(f"  MACs: {analysed.macs:,}")
    print(f"  outputs: {outputs}")
    for ran in built.passes:
        print(f"  pass {ran.name}: {ran.removed} nodes fewer ({ran.does})")
    print(f"  layout: {built.layout}")
    print(f"  time: {built.seconds:.1f} s")
    return 0


def _positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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


def cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    from xgraph.plugins import TRAINERS, entries
    from xgraph.training.launch import is_launched_replica, run_local

    trainers = sorted({entry.name for entry in entries(TRAINERS)})
    if args.backend not in trainers:
        raise SpecError(f"--backend {args.backend}: training runs in {' or '.join(trainers)}")
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
    from xgraph.training.replicas import Replicas, from_environment

    analysed = load(args.spec, args.overrides)
    changes = {"epochs": args.epochs, "batch_size": args.train_batch}
    changes = {key: value for key, value in changes.items() if value is not None}
    if changes:
        analysed = dataclasses.replace(
            analysed, training=analysed.training.model_copy(update=changes)
        )
    out = Path(args.out) if args.out else Path("runs") / f"{analysed.name}-{args.backend}"
    check_output_folder(out, [("the training data", args.data)])
    if args.nproc > 1 and not is_launched_replica():  # said once, before any process starts
        check_replicas(analysed, Replicas(0, args.nproc))

        def say_what_was_written() -> None:
            found = artifacts(out, analysed.name)
            print(f"  {out}: {describe_artifacts(found)}", file=sys.stderr)

        return run_local(args.nproc, args.backend, _without_nproc(_ARGV), say_what_was_written)
    config = RunConfig(
        data=Path(args.data),
        out=out,
        backend=args.backend,
        resume=args.resume,
        checkpoint_every=args.checkpoint_every,
        sync_batch_norm=args.sync_batch_norm,
        weights=Path(args.weights) if args.weights else None,
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
            f"{'es' if replicas.world_size > 1 else ''}): {len(result.records)} epochs{shown}"
        )
        print(f"wrote {result.model_path} and {result.weights_path}")
        print(f"  checkpoint: {result.checkpoint}")
        print(f"  metrics: {config.out / 'metrics.jsonl'}")
    return 0


def cmd_parity(args: argparse.Namespace) -> int:
    from xgraph.api import load_backends
    from xgraph.init import random_weights
    from xgraph.parity import check_numeric_parity_pairs, check_param_parity

    _check_numbers(args)
    analysed, weights = _load_for_build(args)
    names = [name.strip() for name in args.backends.split(",") if name.strip()]
    if len(set(names)) != len(names):
        raise SpecError(f"--backends names a backend twice: '{args.backends}'")
    backends = load_backends(analysed, names)
    if not args.numeric:
        report = check_param_parity(analysed, weights, backends)
        print(json.dumps(report.as_dict(), indent=2) if args.json else report.table())
        return 0 if report.agrees else 1
    if len(backends) < 2:
        raise SpecError("--numeric compares two backends or more", hint="--backends keras,torch")
    seed = 0 if args.seed is None else args.seed
    if not args.weights:
        weights = random_weights(analysed, seed=seed)
    reports = check_numeric_parity_pairs(
        analysed, weights, backends, args.tol, args.batch, seed, progress=_progress
    )
    if args.json:
        documents = [report.as_dict() for report in reports]
        print(json.dumps(documents[0] if len(documents) == 1 else documents, indent=2))
    else:
        print("\n".join(report.table() for report in reports))
    return 0 if all(report.agrees for report in reports) else 1


def cmd_weights(args: argparse.Namespace) -> int:
    from xgraph.api import load
    from xgraph.weights.formats import read_weights, write_weights

    analysed = load(args.spec, args.overrides)
    _checked_output(args, analysed, ("the --from file", args.source))
    weights = read_weights(args.source, analysed, args.accept_bad_values)
    write_weights(args.output, analysed, weights)
    print(f"wrote {args.output}: {len(weights)} tensors, {analysed.total_params:,} values")
    return 0


def cmd_codegen(args: argparse.Namespace) -> int:
    from xgraph.api import load
    from xgraph.codegen import generate

    analysed = load(args.spec, args.overrides)
    if args.output is not None:
        _checked_output(args, analysed)
    source = generate(analysed, args.backend, args.spec, args.overrides)
    if args.output is None:
        sys.stdout.write(source)
        return 0
    from xgraph.files import write_atomically

    write_atomically(Path(args.output), source.encode())
    print(f"wrote {args.output} ({args.backend}, {source.count(chr(10))} lines)")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from xgraph.api import load
    from xgraph.diff import diff_dict, diff_graphs, diff_text

    result = diff_graphs(load(args.before, args.overrides), load(args.after, args.overrides))
    print(json.dumps(diff_dict(result), indent=2) if args.json else diff_text(result))
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from xgraph.api import load
    from xgraph.report import table_row, table_text

    rows = [table_row(load(spec, args.overrides)) for spec in args.specs]
    print(json.dumps(rows, indent=2) if args.json else table_text(rows))
    return 0


def cmd_ops(args: argparse.Namespace) -> int:
    from xgraph.catalogue import catalogue, catalogue_text

    entries = catalogue()
    print(json.dumps(entries, indent=2) if args.json else catalogue_text(entries))
    return 0


DOCUMENTS = ("spec", "summary", "parity", "parity-numeric", "ops")


def cmd_schema(args: argparse.Namespace) -> int:
    if args.document == "spec":
        from xgraph.schema import spec_json_schema

        schema = spec_json_schema()
    else:
        from xgraph.documents import DOCUMENT_SCHEMAS

        schema = DOCUMENT_SCHEMAS[args.document]
    print(json.dumps(schema, indent=2))
    return 0


SPEC_HELP = "the YAML spec file (see docs/spec.md)"


class Parser(argparse.ArgumentParser):
    """argparse with the "did you mean" of git and cargo for a mistyped command or option."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        hint = self._suggestion(message)
        if hint:
            print(f"  hint: {hint}", file=sys.stderr)
        sys.exit(2)

    def _suggestion(self, message: str) -> str | None:
        from xgraph.errors import did_you_mean

        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            return did_you_mean(choice.group(1), re.findall(r"'?([\w-]+)'?", choice.group(2)))
        known = self._all_options()
        for word in _ARGV:  # an option nobody knows, such as --backnd: its nearest spelling
            option = word.split("=", 1)[0]
            if option.startswith("--") and option not in known:
                suggestion = did_you_mean(option, known)
                return f"'{option}' is not an option: {suggestion}" if suggestion else None
        return None

    def _all_options(self) -> list[str]:
        """The top-level options and those of the command being run."""
        top = _PARSERS[0]
        options = list(top._option_string_actions)
        command = next((word for word in _ARGV if not word.startswith("-")), None)
        for action in top._actions:
            if isinstance(action, argparse._SubParsersAction) and command in action.choices:
                options += list(action.choices[command]._option_string_actions)
        return options


_ARGV: list[str] = []  # the words being parsed, for suggestions
_PARSERS: list[Parser] = []


def _command(
    commands: argparse._SubParsersAction, name: str, summary: str, description: str, examples: str
) -> argparse.ArgumentParser:
    return commands.add_parser(
        name,
        help=summary,
        description=f"{summary[:1].upper()}{summary[1:]}.\n\n{textwrap.dedent(description).strip()}",
        epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def make_parser() -> Parser:
    from xgraph import __version__

    parser = Parser(
        prog="xgraph",
        description="Compile a YAML network spec into PyTorch, Keras and ONNX models, and prove "
        "they are the same network.",
        epilog="Run 'xgraph COMMAND --help' for a command's options and examples. "
        "The spec language: docs/spec.md.",
    )
    parser.add_argument("--version", action="version", version=f"xgraph {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for spec errors")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=Parser
    )

    validate = _command(
        commands,
        "validate",
        "check specs without building anything",
        """
        Checks structure, parameters, expressions, references and shapes of every SPEC, and
        prints 'SPEC: ok (N nodes, P parameters)' for each one that passes. Every file is
        checked, not only up to the first bad one; the exit status is 2 if any failed.
        """,
        """
        xgraph validate specs/xception.yaml
        xgraph validate specs/*.yaml --set classes=10
        """,
    )
    validate.add_argument("specs", nargs="+", metavar="SPEC", help="one or more spec files")
    _add_set(validate)
    validate.set_defaults(handler=cmd_validate)

    summary = _command(
        commands,
        "summary",
        "per-node shapes, parameters and MACs",
        """
        Prints a Keras-style table: each node with its op, output shape (batch as None),
        parameters, MACs and inputs, then the totals.
        """,
        """
        xgraph summary specs/xception.yaml
        xgraph summary specs/xception.yaml --set include_top=false --json
        """,
    )
    summary.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    summary.add_argument(
        "--json",
        action="store_true",
        help="print a JSON document instead (its schema: xgraph schema --document summary)",
    )
    _add_set(summary)
    summary.set_defaults(handler=cmd_summary)

    graph = _command(
        commands,
        "graph",
        "draw the graph (.dot, .svg, .png)",
        """
        Draws every node, each block instance in a dashed box. .dot is written directly;
        .svg and .png need Graphviz's 'dot' program.
        """,
        """
        xgraph graph specs/xception.yaml -o xception.svg
        """,
    )
    graph.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    graph.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="where to write: .dot, .svg or .png"
    )
    _add_set(graph)
    graph.set_defaults(handler=cmd_graph)

    build = _command(
        commands,
        "build",
        "compile the spec into a saved model",
        """
        torch: a torch.export archive (.pt2) whose module takes NCHW input with a dynamic
        batch; keras: a .keras archive of built-in layers, NHWC; onnx: an ONNX model (opset
        21, NCHW, dynamic batch) for ONNX Runtime or OpenVINO. All start from the same
        weights (--weights, or an initialisation drawn once for all).
        """,
        """
        xgraph build specs/xception.yaml --backend torch            # writes xception.pt2
        xgraph build specs/xception.yaml --backend keras -o model.keras --seed 0
        xgraph build specs/xception.yaml --backend torch --outputs block3_pool,predictions
        """,
    )
    build.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    build.add_argument(
        "--backend",
        required=True,
        metavar="NAME",
        help="torch (writes .pt2), keras (.keras) or onnx (.onnx)",
    )
    build.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="where to write the model; default: the spec's name with the backend's suffix, "
        "in the current folder (xception.pt2)",
    )
    _add_model_options(build)
    build.add_argument(
        "--optimize",
        nargs="?",
        const="",
        metavar="PASS,...",
        help="an inference build: run the graph passes (all, or those named: "
        "drop_identities, fold_batch_norm, fuse_activation) and say what each did; same "
        "outputs, but the BatchNorm statistics are gone, so it no longer trains like the spec",
    )
    build.add_argument(
        "--fold-batch-norm",
        action="store_true",
        help="the fold_batch_norm pass alone (--optimize fold_batch_norm)",
    )
    build.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a backend's build option, repeatable: onnx layout=nchw|nhwc (the model's "
        "image layout, default nchw); torch compile=no|aoti (aoti: an AOTInductor-compiled "
        "package instead of an exported program)",
    )
    build.set_defaults(handler=cmd_build)

    train = _command(
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
        one replica.
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
        type=_positive,
        metavar="N",
        help="epochs to train; default: the recipe's (training.epochs)",
    )
    train.add_argument(
        "--batch",
        dest="train_batch",
        type=_positive,
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
        type=_positive,
        default=0,
        metavar="STEPS",
        help="also checkpoint every STEPS optimizer steps within an epoch (default: at each "
        "epoch's end only)",
    )
    train.add_argument(
        "--nproc",
        type=_positive,
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
    _add_set(train)
    train.set_defaults(handler=cmd_train)

    parity = _command(
        commands,
        "parity",
        "check that the backends build the same network",
        """
        Builds every backend with the same weights and compares the parameters read off the
        models, node by node, with the analytic counts and with each other. --numeric runs the
        numeric check instead: the same input through two backends, with random weights and
        random BatchNorm statistics, comparing every node's output (relative error
        max|a - b| / max|b|). Exit status 0 when all agree, 1 when a node differs.
        """,
        """
        xgraph parity specs/xception.yaml
        xgraph parity specs/xception.yaml --numeric --tol 1e-5 --json
        """,
    )
    parity.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    parity.add_argument(
        "--json",
        action="store_true",
        help="print a JSON document instead (its schema: xgraph schema --document parity, "
        "or parity-numeric)",
    )
    parity.add_argument(
        "--backends",
        default="keras,torch",
        metavar="A,B",
        help="comma-separated backends; --numeric compares every pair, the one named first "
        "as reference (default: %(default)s)",
    )
    parity.add_argument(
        "--numeric",
        action="store_true",
        help="compare every node's output for one random input instead of parameter counts",
    )
    parity.add_argument(
        "--tol",
        type=float,
        default=1e-4,
        help="largest relative error allowed per node (default: %(default)g)",
    )
    parity.add_argument(
        "--batch",
        type=int,
        default=2,
        help="batch size of the numeric check (default: %(default)s)",
    )
    _add_model_options(parity)
    parity.set_defaults(handler=cmd_parity)

    weights = _command(
        commands,
        "weights",
        "convert weights between canonical, torch and Keras files",
        """
        Reads a weights file, checks every tensor against the spec's graph, and writes it in
        another format. Nothing is written unless the whole file fits.
        """,
        """
        xgraph weights specs/xception.yaml --from xception.weights.h5 -o xception.pt
        xgraph weights specs/xception.yaml --from model.pt -o model.safetensors
        """,
    )
    weights.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    weights.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="FILE",
        help="the weights to read: .safetensors, .pt/.pth, .keras, .weights.h5 or legacy .h5",
    )
    weights.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="the file to write: .safetensors (canonical), .pt (torch state dict) or "
        ".weights.h5 (Keras)",
    )
    _add_set(weights)
    _add_accept_bad_values(weights)
    weights.set_defaults(handler=cmd_weights)

    codegen = _command(
        commands,
        "codegen",
        "write the spec as a standalone PyTorch or Keras Python module",
        """
        One readable module that imports only torch (or only keras) and the standard
        library: an nn.Module class, or a function building a functional keras.Model, as
        keras.applications does. Blocks become methods or functions, repeats loops; layer
        names are the node names, so weights from 'xgraph weights -o model.pt' or
        '.weights.h5' load unchanged. Spec parameters that only change values (classes)
        become keyword arguments; the others are resolved.
        """,
        """
        xgraph codegen specs/xception.yaml --backend torch -o xception_torch.py
        xgraph codegen specs/xception.yaml --backend keras --set classes=10
        """,
    )
    codegen.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    codegen.add_argument("--backend", required=True, metavar="NAME", help="torch or keras")
    codegen.add_argument(
        "-o", "--output", metavar="FILE", help="where to write the module; default: stdout"
    )
    _add_set(codegen)
    codegen.set_defaults(handler=cmd_codegen)

    diff = _command(
        commands,
        "diff",
        "show what differs between two specs after expansion",
        """
        Compares two specs node by node, matching nodes by name: the nodes added, removed
        and changed (op, attributes, inputs, output shape, parameters, MACs), and the
        totals of each with their difference. Made for a variant and the spec it extends.
        --set applies to both specs.
        """,
        """
        xgraph diff specs/xception.yaml specs/xception_intermediate_relu.yaml
        xgraph diff specs/xception41.yaml specs/xception65.yaml --json
        """,
    )
    diff.add_argument("before", metavar="A", help="the first spec (the base)")
    diff.add_argument("after", metavar="B", help="the second spec (the variant)")
    diff.add_argument("--json", action="store_true", help="print a JSON document instead")
    _add_set(diff)
    diff.set_defaults(handler=cmd_diff)

    table = _command(
        commands,
        "table",
        "one row per spec: input, parameters, MACs, depth",
        """
        Compares specs as papers' tables do: input size, parameters (total and trainable),
        multiply-accumulates of one example, and depth in weighted layers (the nodes that
        multiply-accumulate: convolutions and dense layers).
        """,
        """
        xgraph table specs/*.yaml
        xgraph table specs/xception.yaml specs/xception41.yaml --json
        """,
    )
    table.add_argument("specs", nargs="+", metavar="SPEC", help="one or more spec files")
    table.add_argument("--json", action="store_true", help="print a JSON list instead")
    _add_set(table)
    table.set_defaults(handler=cmd_table)

    ops = _command(
        commands,
        "ops",
        "list every op: attributes, the package it comes from, the backends that lower it",
        """
        Lists the built-in ops and those installed packages add (op plugins), with each
        op's attributes and their defaults.
        """,
        """
        xgraph ops
        xgraph ops --json
        """,
    )
    ops.add_argument(
        "--json",
        action="store_true",
        help="print a JSON document instead (its schema: xgraph schema --document ops)",
    )
    ops.set_defaults(handler=cmd_ops)

    schema = _command(
        commands,
        "schema",
        "print a JSON Schema: of the spec language, or of a command's JSON output",
        """
        Without --document, the JSON Schema of the spec language, for editors that complete
        and check YAML (one schema per op, with its attributes).
        """,
        """
        xgraph schema > xgraph-spec.schema.json
        xgraph schema --document summary
        """,
    )
    schema.add_argument(
        "--document",
        default="spec",
        choices=DOCUMENTS,
        help="which schema (default: %(default)s)",
    )
    schema.set_defaults(handler=cmd_schema)
    for command in commands.choices.values():  # `--debug` may come after the command too
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    _ARGV[:] = sys.argv[1:] if argv is None else list(argv)
    _PARSERS[:] = [parser]
    args = parser.parse_args(argv)
    try:
        from xgraph.budgets import parse_limits, using_budgets

        with using_budgets(parse_limits(getattr(args, "limits", []))):
            return args.handler(args)
    except SpecError as exc:
        if args.debug:
            raise
        print(exc.format(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (`| head`) went away: not an error of ours; keep Python quiet on exit.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0


if __name__ == "__main__":
    sys.exit(main())
