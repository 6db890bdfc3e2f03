"""The top-level parser and `main`: the global options, the commands in the order the help
lists them, and the exit statuses: 0, 1 when a check finds a difference, 2 for a usage or spec
error, 130 when interrupted."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from xgraph.cli import (
    build,
    evaluate,
    importing,
    language,
    parity,
    predict,
    specs,
    train,
    tune,
)
from xgraph.cli.parser import Parser
from xgraph.errors import SpecError

# Each adds its command's parser, whose `handler` default runs the command; in this order in
# `xgraph --help`.
COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    specs.add_validate,
    specs.add_summary,
    specs.add_graph,
    build.add_build,
    train.add_train,
    tune.add_tune,
    evaluate.add_evaluate,
    predict.add_predict,
    parity.add_parity,
    build.add_weights,
    build.add_codegen,
    importing.add_import,
    specs.add_diff,
    specs.add_table,
    language.add_ops,
    language.add_schema,
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
    for add in COMMANDS:
        add(commands)
    for command in commands.choices.values():
        command.top = parser  # its errors suggest from the whole command line
        # `--debug` may come after the command too
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_words(sys.argv[1:] if argv is None else argv)
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
