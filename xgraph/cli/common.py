"""What the commands share: the SPEC argument's help, the layout of a command's help, the
--set and --limit options and those of a model (--seed, --init, --weights, --outputs), progress
notes on stderr, and the checks of -o and of the numbers argparse lets through."""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from xgraph.errors import SpecError

if TYPE_CHECKING:
    from xgraph.ir.analysis import AnalysedGraph

SPEC_HELP = "the YAML spec file (see docs/spec.md)"


def add_command(
    commands: argparse._SubParsersAction, name: str, summary: str, description: str, examples: str
) -> argparse.ArgumentParser:
    """A command's parser: its summary (its line in `xgraph --help`) opens its description,
    its examples close its help."""
    return commands.add_parser(
        name,
        help=summary,
        description=f"{summary[:1].upper()}{summary[1:]}.\n\n{textwrap.dedent(description).strip()}",
        epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def natural_int(text: str) -> int:
    """An argparse type: a whole number of at least 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


_BYTE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def byte_size(text: str) -> int:
    """An argparse type: a number of bytes, with an optional binary unit (512M, 2G, 1.5G)."""
    number, unit = text.strip().rstrip("bB").rstrip("iI"), ""
    if number and number[-1].lower() in _BYTE_UNITS:
        number, unit = number[:-1], number[-1].lower()
    try:
        value = float(number) * _BYTE_UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a size in bytes such as 0, 512M or 2G, got '{text}'"
        ) from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more, got '{text}'")
    return int(value)


def add_set(parser: argparse.ArgumentParser) -> None:
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


def add_accept_bad_values(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--accept-bad-values",
        action="store_true",
        help="load a weights file even with NaN or infinite values, negative BatchNorm "
        "variances or non-float tensors (converted to float32); refused by default",
    )


def add_model_options(parser: argparse.ArgumentParser) -> None:
    from xgraph.ops.initializers import DEFAULT_INITIALIZER, KERNEL_INITIALIZERS

    add_set(parser)
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
    add_accept_bad_values(parser)
    parser.add_argument(
        "--outputs",
        metavar="NODE,...",
        help="return these nodes' outputs, in this order (feature extraction)",
    )


def progress(message: str) -> None:
    """A note on stderr, shown at once (the output proper goes to stdout)."""
    print(message, file=sys.stderr, flush=True)


def checked_output(
    args: argparse.Namespace, analysed: AnalysedGraph, *inputs: tuple[str, str | None]
) -> Path:
    """`-o`, refused before any work if it would replace an input of the command (the spec,
    a spec it extends, `inputs`) or is no place for a file (xgraph.files); the folders
    writing it will create are announced."""
    from xgraph.files import check_output, spec_inputs

    plan = check_output(
        args.output, [*spec_inputs(args.spec, analysed.graph.source_files()), *inputs]
    )
    if note := plan.folders_note():
        progress(note)
    return plan.path


MAX_PARITY_BATCH = 64  # the numeric check keeps every node's output of every backend


def check_numbers(args: argparse.Namespace) -> None:
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


def model_outputs(args: argparse.Namespace) -> list[str]:
    """--outputs as node names; none given: the spec's own outputs."""
    outputs = [name.strip() for name in (args.outputs or "").split(",") if name.strip()]
    if args.outputs is not None and not outputs:
        raise SpecError("--outputs needs at least one node name")
    return outputs
