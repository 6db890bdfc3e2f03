"""The `xgraph` command: a thin layer over `xgraph.api`.

Nothing here imports torch or tensorflow at start-up; a backend is imported only by the
commands that need it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from xgraph.errors import SpecError

Handler = Callable[[argparse.Namespace], int]


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a spec parameter; VALUE is read as YAML (repeatable)",
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
        help=f"kernel initialiser; default: the spec's 'initializer', else {DEFAULT_INITIALIZER}"
        " (Keras's)",
    )
    parser.add_argument(
        "--weights",
        metavar="FILE",
        help="start from these weights: .safetensors, .pt/.pth, .keras, .weights.h5 or legacy .h5",
    )
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
    render(analysed, Path(args.output))
    print(f"wrote {args.output}")
    return 0


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _load_for_build(args: argparse.Namespace):
    from xgraph.api import load_with_weights

    outputs = [name.strip() for name in (args.outputs or "").split(",") if name.strip()]
    if args.outputs is not None and not outputs:
        raise SpecError("--outputs needs at least one node name")
    return load_with_weights(args.spec, args.overrides, args.weights, args.seed, args.init, outputs)


def _load_backends(analysed, names: list[str]) -> list:
    """The named backends, once every one of them is known to lower every node: a missing
    rule is reported at its node before a framework is even imported."""
    from xgraph.backend import available_backends, load_backend
    from xgraph.rules import require_rules

    for name in names:
        if name in available_backends():
            require_rules(analysed, name)
    return [load_backend(name) for name in names]


def cmd_build(args: argparse.Namespace) -> int:
    import time

    started = time.perf_counter()
    analysed, weights = _load_for_build(args)
    if args.fold_batch_norm:
        from xgraph.passes.fold_batch_norm import fold_batch_norm

        analysed, weights = fold_batch_norm(analysed, weights)
    output = Path(args.output)
    (backend,) = _load_backends(analysed, [args.backend])
    if output.suffix != backend.file_suffix:
        raise SpecError(
            f"the {backend.name} backend writes {backend.file_suffix} files, not '{output.name}'",
            hint=f"use -o {output.stem}{backend.file_suffix}",
        )
    _progress(
        f"[{time.perf_counter() - started:5.1f}s] building {analysed.name} "
        f"({len(analysed.graph)} nodes) with {backend.name}"
    )
    model = backend.build(analysed, weights)
    _progress(f"[{time.perf_counter() - started:5.1f}s] saving {output}")
    backend.save(model, analysed, output)
    elapsed = time.perf_counter() - started
    outputs = ", ".join(f"{n} {analysed.shapes[n]}" for n in analysed.graph.outputs)
    print(f"wrote {output} ({backend.name})")
    print(
        f"  parameters: {analysed.total_params:,} (trainable {analysed.trainable_params:,}, "
        f"non-trainable {analysed.non_trainable_params:,})"
    )
    print(f"  MACs: {analysed.macs:,}")
    print(f"  outputs: {outputs}")
    print(f"  time: {elapsed:.1f} s")
    return 0


def cmd_parity(args: argparse.Namespace) -> int:
    from xgraph.init import random_weights
    from xgraph.parity import check_numeric_parity, check_param_parity

    analysed, weights = _load_for_build(args)
    names = [name.strip() for name in args.backends.split(",") if name.strip()]
    backends = _load_backends(analysed, names)
    if not args.numeric:
        report = check_param_parity(analysed, weights, backends)
    else:
        if len(backends) != 2:
            raise SpecError("--numeric compares exactly two backends")
        seed = 0 if args.seed is None else args.seed
        if not args.weights:
            weights = random_weights(analysed, seed=seed)
        report = check_numeric_parity(
            analysed, weights, backends, args.tol, args.batch, seed, progress=_progress
        )
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.table())
    return 0 if report.agrees else 1


def cmd_weights(args: argparse.Namespace) -> int:
    from xgraph.api import load
    from xgraph.weights.formats import read_weights, write_weights

    analysed = load(args.spec, args.overrides)
    weights = read_weights(args.source, analysed)
    write_weights(args.output, analysed, weights)
    print(f"wrote {args.output}: {len(weights)} tensors, {analysed.total_params:,} values")
    return 0


def cmd_ops(args: argparse.Namespace) -> int:
    from xgraph.catalogue import catalogue, catalogue_text

    entries = catalogue()
    print(json.dumps(entries, indent=2) if args.json else catalogue_text(entries))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from xgraph.schema import spec_json_schema

    print(json.dumps(spec_json_schema(), indent=2))
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xgraph",
        description="Compile a YAML network spec into PyTorch and Keras models.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for spec errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check specs without building anything")
    validate.add_argument("specs", nargs="+", metavar="SPEC")
    _add_set(validate)
    validate.set_defaults(handler=cmd_validate)

    summary = commands.add_parser("summary", help="per-node shapes, parameters and MACs")
    summary.add_argument("spec", metavar="SPEC")
    summary.add_argument("--json", action="store_true", help="machine-readable output")
    _add_set(summary)
    summary.set_defaults(handler=cmd_summary)

    graph = commands.add_parser("graph", help="draw the graph (.dot, .svg, .png)")
    graph.add_argument("spec", metavar="SPEC")
    graph.add_argument("-o", "--output", required=True, metavar="FILE")
    _add_set(graph)
    graph.set_defaults(handler=cmd_graph)

    build = commands.add_parser("build", help="compile the spec into a saved model")
    build.add_argument("spec", metavar="SPEC")
    build.add_argument("--backend", required=True, help="torch (.pt2) or keras (.keras)")
    build.add_argument("-o", "--output", required=True, metavar="PATH")
    _add_model_options(build)
    build.add_argument(
        "--fold-batch-norm",
        action="store_true",
        help="fold BatchNorm into the conv or dense layer before it (inference only: faster, "
        "same outputs, no longer trains like the spec)",
    )
    build.set_defaults(handler=cmd_build)

    parity = commands.add_parser("parity", help="check that the backends build the same network")
    parity.add_argument("spec", metavar="SPEC")
    parity.add_argument("--json", action="store_true", help="machine-readable output")
    parity.add_argument(
        "--backends",
        default="keras,torch",
        help="comma-separated backends; --numeric takes the first as reference",
    )
    parity.add_argument(
        "--numeric",
        action="store_true",
        help="also run the same input through both and compare every node",
    )
    parity.add_argument(
        "--tol",
        type=float,
        default=1e-4,
        help="largest relative error allowed per node (default: %(default)g)",
    )
    parity.add_argument("--batch", type=int, default=2, help="batch size of the numeric check")
    _add_model_options(parity)
    parity.set_defaults(handler=cmd_parity)

    weights = commands.add_parser(
        "weights", help="convert weights between canonical, torch and Keras files"
    )
    weights.add_argument("spec", metavar="SPEC")
    weights.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="FILE",
        help=".safetensors, .pt/.pth, .keras, .weights.h5 or legacy .h5",
    )
    weights.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help=".safetensors (canonical), .pt (torch state dict) or .weights.h5",
    )
    _add_set(weights)
    weights.set_defaults(handler=cmd_weights)

    ops = commands.add_parser(
        "ops",
        help="list every op: attributes, the package it comes from, the backends that lower it",
    )
    ops.add_argument("--json", action="store_true", help="machine-readable output")
    ops.set_defaults(handler=cmd_ops)

    schema = commands.add_parser("schema", help="print the JSON Schema of the spec language")
    schema.set_defaults(handler=cmd_schema)
    for command in commands.choices.values():  # `--debug` may come after the command too
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
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
