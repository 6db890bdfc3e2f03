"""The commands that write a model or its parts from a spec: build (a saved model), weights
(a weights file in another format), codegen (the model as Python source)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xgraph.cli.common import (
    SPEC_HELP,
    add_accept_bad_values,
    add_command,
    add_model_options,
    add_set,
    check_numbers,
    checked_output,
    model_outputs,
    progress,
)


def _passes(args: argparse.Namespace) -> bool | list[str]:
    """--optimize alone runs every inference pass; with names, those; --fold-batch-norm is
    the one pass it was before --optimize existed."""
    if args.optimize is not None:
        names = [name.strip() for name in args.optimize.split(",") if name.strip()]
        return names or True
    return ["fold_batch_norm"] if args.fold_batch_norm else False


def add_build(commands: argparse._SubParsersAction) -> None:
    build = add_command(
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
    add_model_options(build)
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


def cmd_build(args: argparse.Namespace) -> int:
    from xgraph.api import build
    from xgraph.backend import parse_options

    check_numbers(args)
    built = build(
        args.spec,
        args.backend,
        args.output,
        args.overrides,
        args.weights,
        args.seed,
        args.init,
        model_outputs(args),
        _passes(args),
        parse_options(args.option),
        progress=progress,
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


def add_weights(commands: argparse._SubParsersAction) -> None:
    weights = add_command(
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
    add_set(weights)
    add_accept_bad_values(weights)
    weights.set_defaults(handler=cmd_weights)


def cmd_weights(args: argparse.Namespace) -> int:
    from xgraph.api import load
    from xgraph.weights.formats import read_weights, write_weights

    analysed = load(args.spec, args.overrides)
    checked_output(args, analysed, ("the --from file", args.source))
    weights = read_weights(args.source, analysed, args.accept_bad_values)
    write_weights(args.output, analysed, weights)
    print(f"wrote {args.output}: {len(weights)} tensors, {analysed.total_params:,} values")
    return 0


def add_codegen(commands: argparse._SubParsersAction) -> None:
    codegen = add_command(
        commands,
        "codegen",
        "write the spec as a standalone PyTorch or Keras Python module",
        """
        One readable module that imports only torch (or only keras) and the standard
        library: nn.Module classes as timm writes them (one per block, repeats as an
        nn.Sequential; 'same' padding worked out at run time, so any input size works),
        or a function building a functional keras.Model, as keras.applications does.
        Keras layer names are the node names, so '.weights.h5' files load unchanged.
        Spec parameters that only change values (classes) become keyword arguments; the
        others are resolved. The code is formatted as ruff formats it at --line-length.
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
    codegen.add_argument(
        "--line-length",
        type=int,
        default=88,
        metavar="N",
        help="format the code for lines of N columns, as ruff does (default: 88, ruff's)",
    )
    add_set(codegen)
    codegen.set_defaults(handler=cmd_codegen)


def cmd_codegen(args: argparse.Namespace) -> int:
    from xgraph.api import codegen, load

    analysed = load(args.spec, args.overrides)
    if args.output is not None:
        checked_output(args, analysed)
    source = codegen(analysed, args.backend, args.spec, args.line_length)
    if args.output is None:
        sys.stdout.write(source)
        return 0
    from xgraph.files import write_atomically

    write_atomically(Path(args.output), source.encode())
    print(f"wrote {args.output} ({args.backend}, {source.count(chr(10))} lines)")
    return 0
