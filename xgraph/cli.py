"""The `xgraph` command: a thin layer over `xgraph.api`.

Nothing here imports torch or tensorflow at start-up; a backend is imported only by the
commands that need it.
"""

from __future__ import annotations

import argparse
import json
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


def cmd_validate(args: argparse.Namespace) -> int:
    from xgraph.api import load

    for spec in args.specs:
        analysed = load(spec, args.overrides)
        print(f"{spec}: ok ({len(analysed.graph)} nodes, {analysed.total_params:,} parameters)")
    return 0


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

    schema = commands.add_parser("schema", help="print the JSON Schema of the spec language")
    schema.set_defaults(handler=cmd_schema)
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


if __name__ == "__main__":
    sys.exit(main())
