"""The commands that read specs and report on them: validate, summary, graph, diff, table."""

from __future__ import annotations

import argparse
import json
import sys

from xgraph.cli.common import SPEC_HELP, add_command, add_set, checked_output
from xgraph.errors import SpecError


def add_validate(commands: argparse._SubParsersAction) -> None:
    validate = add_command(
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
    add_set(validate)
    validate.set_defaults(handler=cmd_validate)


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


def add_summary(commands: argparse._SubParsersAction) -> None:
    summary = add_command(
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
    add_set(summary)
    summary.set_defaults(handler=cmd_summary)


def cmd_summary(args: argparse.Namespace) -> int:
    from xgraph.api import load
    from xgraph.reports.summary import summary_dict, summary_table

    analysed = load(args.spec, args.overrides)
    if args.json:
        print(json.dumps(summary_dict(analysed), indent=2))
    else:
        print(summary_table(analysed))
    return 0


def add_graph(commands: argparse._SubParsersAction) -> None:
    graph = add_command(
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
    add_set(graph)
    graph.set_defaults(handler=cmd_graph)


def cmd_graph(args: argparse.Namespace) -> int:
    from xgraph.api import load
    from xgraph.reports.render import render

    analysed = load(args.spec, args.overrides)
    render(analysed, checked_output(args, analysed))
    print(f"wrote {args.output}")
    return 0


def add_diff(commands: argparse._SubParsersAction) -> None:
    diff = add_command(
        commands,
        "diff",
        "show what differs between two specs after expansion",
        """
        Compares two specs after expansion: the parameters whose values differ, the nodes
        added, removed and changed (op, attributes, inputs, output shape, parameters, MACs),
        and the totals of each with their difference. Nodes are matched within their block
        instances, aligned in order (so a variant with fewer repeated blocks compares its
        exit flow with the base's exit flow, whatever their numbers). Made for a variant and
        the spec it extends. --set applies to both specs. Exit status, as diff(1): 0 when
        the specs are the same, 1 when they differ, 2 on errors.
        """,
        """
        xgraph diff specs/xception.yaml specs/xception_intermediate_relu.yaml
        xgraph diff specs/xception.yaml my_variant.yaml --ignore-shapes
        xgraph diff specs/xception.yaml my_variant.yaml --same-params
        xgraph diff specs/xception41.yaml specs/xception65.yaml --json
        """,
    )
    diff.add_argument("before", metavar="A", help="the first spec (the base)")
    diff.add_argument("after", metavar="B", help="the second spec (the variant)")
    diff.add_argument(
        "--ignore-shapes",
        action="store_true",
        help="leave out changes of output shape, parameters and MACs of nodes otherwise the "
        "same (what a new input size or width causes); the totals still show them",
    )
    diff.add_argument(
        "--same-params",
        action="store_true",
        help="compare B at A's parameter values (those both declare), so that only its "
        "edits show; the parameters that differ are still listed",
    )
    diff.add_argument("--json", action="store_true", help="print a JSON document instead")
    add_set(diff)
    diff.set_defaults(handler=cmd_diff)


def _as_set(name: str, value: object) -> str:
    """`NAME=VALUE` as --set reads it (VALUE is YAML, and JSON is YAML)."""
    plain = list(value) if isinstance(value, tuple) else value
    return f"{name}={json.dumps(plain)}"


def cmd_diff(args: argparse.Namespace) -> int:
    from xgraph.api import load
    from xgraph.reports.diff import diff_graphs, diff_params
    from xgraph.reports.diff_views import diff_dict, diff_text

    before = load(args.before, args.overrides)
    after = load(args.after, args.overrides)
    params = diff_params(before, after)
    if args.same_params:
        held = [
            _as_set(name, value) for name, value in before.params.items() if name in after.params
        ]
        after = load(args.after, [*held, *args.overrides])
    result = diff_graphs(before, after, ignore_shapes=args.ignore_shapes)
    result.params = params
    print(json.dumps(diff_dict(result), indent=2) if args.json else diff_text(result))
    return 0 if result.same else 1


def add_table(commands: argparse._SubParsersAction) -> None:
    table = add_command(
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
    add_set(table)
    table.set_defaults(handler=cmd_table)


def cmd_table(args: argparse.Namespace) -> int:
    from xgraph.api import load
    from xgraph.reports.summary import table_row, table_text

    rows = [table_row(load(spec, args.overrides)) for spec in args.specs]
    print(json.dumps(rows, indent=2) if args.json else table_text(rows))
    return 0
