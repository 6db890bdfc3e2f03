"""`xgraph parity`: the backends build the same network (parameter counts, or --numeric,
every node's output); exit status 1 when they differ."""

from __future__ import annotations

import argparse
import json

from xgraph.cli.common import (
    SPEC_HELP,
    add_command,
    add_model_options,
    check_numbers,
    model_outputs,
    progress,
)
from xgraph.errors import SpecError


def _load_for_build(args: argparse.Namespace):
    from xgraph.api import load_with_weights

    return load_with_weights(
        args.spec,
        args.overrides,
        args.weights,
        args.seed,
        args.init,
        model_outputs(args),
        args.accept_bad_values,
    )


def add_parity(commands: argparse._SubParsersAction) -> None:
    parity = add_command(
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
    add_model_options(parity)
    parity.set_defaults(handler=cmd_parity)


def cmd_parity(args: argparse.Namespace) -> int:
    from xgraph.api import load_backends
    from xgraph.reports.parity import check_numeric_parity_pairs, check_param_parity
    from xgraph.weights.initial import random_weights

    check_numbers(args)
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
        analysed, weights, backends, args.tol, args.batch, seed, progress=progress
    )
    if args.json:
        documents = [report.as_dict() for report in reports]
        print(json.dumps(documents[0] if len(documents) == 1 else documents, indent=2))
    else:
        print("\n".join(report.table() for report in reports))
    return 0 if all(report.agrees for report in reports) else 1
