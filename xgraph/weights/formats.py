"""Reading and writing weights by file type; each file is converted to canonical weights
as a whole, checked against the graph, and only then given to a model."""

from __future__ import annotations

from pathlib import Path

from xgraph.analysis import AnalysedGraph
from xgraph.errors import SpecError
from xgraph.init import Weights
from xgraph.weights.canonical import check_complete, read_canonical, write_canonical

READABLE = (".safetensors", ".pt", ".pth", ".keras", ".weights.h5", ".h5")
WRITABLE = (".safetensors", ".pt", ".pth", ".weights.h5")


def _suffix(path: Path) -> str:
    return ".weights.h5" if path.name.endswith(".weights.h5") else path.suffix.lower()


def read_weights(path: str | Path, analysed: AnalysedGraph) -> Weights:
    """Canonical weights for `analysed` from any supported file, or a SpecError report."""
    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such weights file")
    if suffix == ".safetensors":
        return read_canonical(path, analysed)
    if suffix in (".pt", ".pth"):
        from xgraph.backend import load_backend

        weights = load_backend("torch").read_state_dict(path, analysed)
        return check_complete(analysed, weights, str(path))
    if suffix in (".keras", ".weights.h5", ".h5"):
        from xgraph.weights.keras_files import read_keras_layers
        from xgraph.weights.matching import match_layers

        weights = match_layers(analysed, read_keras_layers(str(path)), str(path))
        return check_complete(analysed, weights, str(path))
    raise SpecError(f"{path}: unknown weights format '{suffix}' (readable: {', '.join(READABLE)})")


def write_weights(path: str | Path, analysed: AnalysedGraph, weights: Weights) -> None:
    path = Path(path)
    suffix = _suffix(path)
    weights = check_complete(analysed, weights, "weights")
    if suffix == ".safetensors":
        write_canonical(path, analysed, weights)
    elif suffix in (".pt", ".pth"):
        from xgraph.backend import load_backend

        load_backend("torch").write_state_dict(path, analysed, weights)
    elif suffix == ".weights.h5":
        from xgraph.backend import load_backend

        load_backend("keras").write_weights_h5(path, analysed, weights)
    else:
        raise SpecError(f"cannot write '{path.name}': use one of {', '.join(WRITABLE)}")
