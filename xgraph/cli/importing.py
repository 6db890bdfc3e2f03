"""`xgraph import`: another framework's model file as a spec, with its weights, checked
against the source model node by node."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from xgraph.cli.common import add_command, positive_int, progress


def add_import(commands: argparse._SubParsersAction) -> None:
    command = add_command(
        commands,
        "import",
        "write a spec for an existing Keras or ONNX model file, with its weights",
        """
        Reads the model as data (nothing in the file runs): a .keras archive, a legacy .h5
        with its model_config, a .weights.h5 with --config CONFIG.json, or an .onnx file
        (channels-first, as torch.onnx.export writes it). Writes
        a spec whose nodes are the file's layers, named as the file names them, defaults left
        out; a layer no xgraph op computes is an error that lists every such layer. Nothing
        is written unless the spec validates (and, with --weights-out, the weights fit it).
        --check builds the spec with the file's weights in every installed backend and
        compares each node with the source model run by its own framework.
        """,
        """
        xgraph import xception.keras -o xception.yaml --weights-out xception.safetensors
        xgraph import model.weights.h5 --config config.json -o model.yaml --check
        xgraph import resnet.onnx -o resnet.yaml --weights-out resnet.safetensors --check
        """,
    )
    command.add_argument("model", metavar="MODEL", help="the model file: .keras, .h5, .onnx")
    command.add_argument(
        "-o", "--output", required=True, metavar="SPEC", help="the YAML spec file to write"
    )
    command.add_argument(
        "--config", metavar="JSON", help="the model's config (model.to_json()) for a .weights.h5"
    )
    command.add_argument("--name", help="the spec's name (default: the model's own)")
    command.add_argument(
        "--flat",
        action="store_true",
        help="write every node as a node: no blocks recovered from repeated structure",
    )
    command.add_argument(
        "--explain",
        action="store_true",
        help="print which nodes became which block instance",
    )
    command.add_argument(
        "--weights-out",
        metavar="FILE",
        help="write the file's weights for the new spec: .safetensors (canonical), .pt, "
        ".weights.h5",
    )
    command.add_argument(
        "--check",
        action="store_true",
        help="compare every node of the new spec's builds with the source model (exit 1 "
        "when one differs beyond --tol)",
    )
    command.add_argument("--tol", type=float, default=1e-5, help="relative tolerance (1e-5)")
    command.add_argument("--batch", type=positive_int, default=2, help="images in the check")
    command.add_argument("--json", action="store_true", help="the check's report as JSON")
    command.set_defaults(handler=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    from xgraph.files import check_output, write_atomically
    from xgraph.importing import imported_spec

    sources = [("the model file", args.model)]
    if args.config:
        sources.append(("the --config file", args.config))
    output = check_output(args.output, sources).path
    weights_out = None
    if args.weights_out:
        weights_out = check_output(args.weights_out, [*sources, ("the spec", args.output)]).path
    text, analysed = imported_spec(
        args.model, str(output), args.config, args.name, structure=not args.flat
    )
    weights = None
    if weights_out is not None or args.check:
        from xgraph.importing import importer_for

        config = Path(args.config) if args.config else None
        weights = importer_for(Path(args.model)).weights_for(Path(args.model), config, analysed)
    if weights_out is not None and weights is not None:
        from xgraph.weights.formats import write_weights

        write_weights(weights_out, analysed, weights)
    write_atomically(output, text.encode("utf-8"))
    print(
        f"wrote {output}: {len(analysed.graph)} nodes, {analysed.total_params:,} parameters"
        + (f"; {weights_out}: {len(weights or {})} tensors" if weights_out else "")
    )
    if args.explain:
        from xgraph.importing.blocks import explain

        lines = explain(analysed)
        print("\n".join(lines) if lines else "no repeated structure recovered")
    if not args.check or weights is None:
        return 0
    from xgraph.importing.check import check_against_source

    progress("running the source model and the new spec's builds on every node")
    reports = check_against_source(
        Path(args.model), args.config, analysed, weights, args.batch, args.tol
    )
    if args.json:
        print(json.dumps([report.as_dict() for report in reports], indent=2))
    else:
        for report in reports:
            print(report.table())
    return 0 if all(report.agrees for report in reports) else 1
