"""Reading and writing weights by file type; each file is converted to canonical weights
as a whole, checked against the graph, and only then given to a model.

The canonical safetensors format is the core's own; every other format (a torch state dict,
Keras's files) belongs to a backend package and is registered through the
`xgraph.weight_files` entry-point group, so the core knows no framework's file layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from xgraph.analysis import AnalysedGraph
from xgraph.errors import SpecError
from xgraph.init import Weights
from xgraph.weights.canonical import check_complete, read_canonical, write_canonical


class WeightFileFormat(Protocol):
    """One family of weight files. `read` returns canonical weights (checked again here);
    neither method may touch a model before the whole file is converted."""

    name: str
    readable: tuple[str, ...]
    writable: tuple[str, ...]

    def read(self, path: Path, analysed: AnalysedGraph) -> Weights: ...

    def write(self, path: Path, analysed: AnalysedGraph, weights: Weights) -> None: ...


class CanonicalFiles:
    name = "canonical"
    readable = (".safetensors",)
    writable = (".safetensors",)

    def read(self, path: Path, analysed: AnalysedGraph) -> Weights:
        return read_canonical(path, analysed)

    def write(self, path: Path, analysed: AnalysedGraph, weights: Weights) -> None:
        write_canonical(path, analysed, weights)


def weight_file_formats() -> list[WeightFileFormat]:
    """The canonical format, then every installed package's."""
    from xgraph.plugins import WEIGHT_FILES, loaded

    return [CanonicalFiles(), *(fmt for _, fmt in loaded(WEIGHT_FILES))]


def _format_for(path: Path, attribute: str) -> WeightFileFormat | None:
    """The format whose longest suffix ends the file name (`.weights.h5` before `.h5`)."""
    name = path.name.lower()
    best: tuple[int, WeightFileFormat] | None = None
    for fmt in weight_file_formats():
        for suffix in getattr(fmt, attribute):
            if name.endswith(suffix) and (best is None or len(suffix) > best[0]):
                best = (len(suffix), fmt)
    return best[1] if best else None


def _suffixes(attribute: str) -> str:
    return ", ".join(s for fmt in weight_file_formats() for s in getattr(fmt, attribute))


def read_weights(path: str | Path, analysed: AnalysedGraph) -> Weights:
    """Canonical weights for `analysed` from any supported file, or a SpecError report."""
    path = Path(path)
    fmt = _format_for(path, "readable")
    if not path.is_file():
        raise SpecError(f"{path}: no such weights file")
    if fmt is None:
        raise SpecError(
            f"{path}: unknown weights format '{path.suffix.lower()}' "
            f"(readable: {_suffixes('readable')})"
        )
    return check_complete(analysed, fmt.read(path, analysed), str(path))


def write_weights(path: str | Path, analysed: AnalysedGraph, weights: Weights) -> None:
    path = Path(path)
    weights = check_complete(analysed, weights, "weights")
    fmt = _format_for(path, "writable")
    if fmt is None:
        raise SpecError(f"cannot write '{path.name}': use one of {_suffixes('writable')}")
    fmt.write(path, analysed, weights)
