"""Reading and writing weights by file type; each file is converted to canonical weights
as a whole, checked against the graph, and only then given to a model.

The canonical safetensors format is the core's own; every other format (a torch state dict,
Keras's files) belongs to a backend package and is registered through the
`xgraph.weight_files` entry-point group, so the core knows no framework's file layout. Each
registered format is a `WeightFileFormat` (checked by mypy in tests/typing_conformance.py).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Protocol, runtime_checkable

from xgraph.errors import SpecError
from xgraph.ir.analysis import AnalysedGraph
from xgraph.weights.canonical import check_complete, read_canonical, write_canonical
from xgraph.weights.checks import ReadOptions, WeightFileError, check_values
from xgraph.weights.initial import Weights


@runtime_checkable
class WeightFileFormat(Protocol):
    """One family of weight files. `read` returns canonical weights (checked again here);
    neither method may touch a model before the whole file is converted.

    A file is untrusted input: `read` checks what the file declares (structure, names,
    shapes, types, sizes) against the graph before it reads tensor data, refuses types other
    than float32 and float64 unless `options.accept_bad_values` (xgraph.weights.checks), and
    raises `WeightFileError` for anything wrong; values are checked here afterwards."""

    @property
    def name(self) -> str: ...

    @property
    def readable(self) -> tuple[str, ...]:
        """The file name suffixes it reads (`.weights.h5`): the longest that matches wins."""
        ...

    @property
    def writable(self) -> tuple[str, ...]: ...

    def read(self, path: Path, analysed: AnalysedGraph, options: ReadOptions) -> Weights: ...

    def write(self, path: Path, analysed: AnalysedGraph, weights: Weights) -> None: ...


class CanonicalFiles:
    name = "canonical"
    readable = (".safetensors",)
    writable = (".safetensors",)

    def read(self, path: Path, analysed: AnalysedGraph, options: ReadOptions) -> Weights:
        return read_canonical(path, analysed, options)

    def write(self, path: Path, analysed: AnalysedGraph, weights: Weights) -> None:
        write_canonical(path, analysed, weights)


@cache
def weight_file_formats() -> tuple[WeightFileFormat, ...]:
    """The canonical format, then every installed package's; found once per process, as
    op rules are (reading entry points costs more than reading a small file)."""
    from xgraph.plugins import WEIGHT_FILES, loaded, package_of

    formats: list[WeightFileFormat] = [CanonicalFiles()]
    for entry, fmt in loaded(WEIGHT_FILES):
        if not isinstance(fmt, WeightFileFormat):
            raise SpecError(
                f"weight files '{entry.value}' of package '{package_of(entry)}' must be a "
                f"format (a name, readable and writable suffixes, read and write), got "
                f"{type(fmt).__name__}"
            )
        formats.append(fmt)
    return tuple(formats)


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


def read_weights(
    path: str | Path, analysed: AnalysedGraph, accept_bad_values: bool = False
) -> Weights:
    """Canonical weights for `analysed` from any supported file, or a WeightFileError report.
    `accept_bad_values` loads NaN or infinite values, negative variances and non-float
    tensors instead of refusing the file."""
    path = Path(path)
    options = ReadOptions(accept_bad_values=accept_bad_values)
    try:
        weights = check_complete(analysed, _read(path, analysed, options), path)
    except OSError as exc:  # permissions, a name too long, a file that went away, I/O
        raise WeightFileError(path, f"cannot read the file: {exc.strerror or exc}") from None
    check_values(weights, path, options)
    return weights


def _read(path: Path, analysed: AnalysedGraph, options: ReadOptions) -> Weights:
    fmt = _format_for(path, "readable")
    if not path.exists():
        raise WeightFileError(path, "no such weights file")
    if not path.is_file():
        raise WeightFileError(path, "not a regular file (a directory, a device or a pipe)")
    if fmt is None:
        raise WeightFileError(
            path,
            f"unknown weights format '{path.suffix.lower()}' (readable: {_suffixes('readable')})",
        )
    return fmt.read(path, analysed, options)


def write_weights(path: str | Path, analysed: AnalysedGraph, weights: Weights) -> None:
    path = Path(path)
    weights = check_complete(analysed, weights, "weights")
    fmt = _format_for(path, "writable")
    if fmt is None:
        raise SpecError(f"cannot write '{path.name}': use one of {_suffixes('writable')}")
    fmt.write(path, analysed, weights)
