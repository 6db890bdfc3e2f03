"""`xgraph import --check`: the new spec's builds, with the file's weights, against the
source model run by its own framework (its importer runs it), node by node."""

from __future__ import annotations

from pathlib import Path

from xgraph.backend import available_backends, load_backend
from xgraph.importing import importer_for
from xgraph.ir.analysis import AnalysedGraph
from xgraph.reports.parity import NumericReport, numeric_parity, probe_every_node, probe_inputs
from xgraph.weights.initial import Weights


def check_against_source(
    path: Path,
    config: str | None,
    analysed: AnalysedGraph,
    weights: Weights,
    batch: int,
    tolerance: float,
    seed: int = 0,
) -> list[NumericReport]:
    """One report per installed backend: its every node against the source model's layer
    of that name (the layers the source exposes: a nested model's are inside it)."""
    names = [node.name for node in analysed.graph.nodes if node.op != "input"]
    inputs = probe_inputs(analysed, batch, seed)
    source = importer_for(path).source_outputs(
        path, Path(config) if config else None, names, inputs
    )
    backends = [load_backend(name) for name in available_backends()]
    outputs = probe_every_node(analysed, weights, backends, batch, seed)
    return [
        numeric_parity(analysed, {"source": source, name: values}, tolerance)
        for name, values in outputs.items()
    ]
