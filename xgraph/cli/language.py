"""The commands about the spec language itself: ops (every op) and schema (the JSON Schemas
of the language and of the commands' JSON output)."""

from __future__ import annotations

import argparse
import json

from xgraph.cli.common import add_command

DOCUMENTS = ("spec", "summary", "parity", "parity-numeric", "ops")


def add_ops(commands: argparse._SubParsersAction) -> None:
    ops = add_command(
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


def cmd_ops(args: argparse.Namespace) -> int:
    from xgraph.reports.catalogue import catalogue, catalogue_text

    entries = catalogue()
    print(json.dumps(entries, indent=2) if args.json else catalogue_text(entries))
    return 0


def add_schema(commands: argparse._SubParsersAction) -> None:
    schema = add_command(
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


def cmd_schema(args: argparse.Namespace) -> int:
    if args.document == "spec":
        from xgraph.reports.schema import spec_json_schema

        schema = spec_json_schema()
    else:
        from xgraph.reports.documents import DOCUMENT_SCHEMAS

        schema = DOCUMENT_SCHEMAS[args.document]
    print(json.dumps(schema, indent=2))
    return 0
