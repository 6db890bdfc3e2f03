"""A model read from another framework's file, before it is a spec: its layers as xgraph ops
with their attributes, named and connected as in the file. Readers (one per file format,
registered under the `xgraph.importers` entry-point group) make it; the spec writer turns it
into YAML a person would write."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from xgraph.errors import FileError


@dataclass(frozen=True)
class ImportedNode:
    """One layer as an xgraph op: `attrs` as the op's attribute model takes them (defaults
    included or not), `inputs` the names of the nodes it reads, in order."""

    name: str
    op: str
    attrs: dict[str, Any]
    inputs: tuple[str, ...]
    # the name is the source's automatic one for its class (Keras's `conv2d_3`, `add`):
    # `automatic` is that class's part, the number follows as `_<n>` (none: 0)
    automatic: str = ""


@dataclass(frozen=True)
class ImportedModel:
    """A whole model: its input nodes (op `input`) come first among `nodes`, in the order
    the source lists its inputs."""

    name: str
    nodes: tuple[ImportedNode, ...]
    outputs: tuple[str, ...]
    source: str  # the file it was read from, as given


@dataclass(frozen=True)
class Unsupported:
    """A layer no xgraph op computes: its class, where the file holds it, and the op nearest
    to it (a hint), if any."""

    cls: str
    where: str
    nearest: str | None = None
    reason: str = ""


class ImportFileError(FileError):
    """A model file refused: printed `FILE: error: message`, exit status 2, nothing written."""


def unsupported_error(source: str | Path, found: Sequence[Unsupported]) -> ImportFileError:
    """One error listing every layer that cannot be imported, so a user sees them all at once."""
    lines = []
    for item in found:
        line = f"{item.where}: {item.cls}"
        if item.reason:
            line += f" ({item.reason})"
        if item.nearest:
            line += f"; nearest xgraph op: '{item.nearest}'"
        lines.append(line)
    count = len(found)
    return ImportFileError(
        source,
        f"{count} layer{'s' if count != 1 else ''} xgraph has no op for",
        notes=lines,
        hint="write those layers as ops of an op plugin (docs/spec.md, 'Op plugins')",
    )


class ModelReader(Protocol):
    """What an importer module offers: the file suffixes it reads, the reading (`config`: a
    separate model config where the file holds only weights, a Keras `.weights.h5`), and
    the source model run by its own framework, for `--check`."""

    SUFFIXES: tuple[str, ...]

    def read_model(self, path: Path, config: Path | None) -> ImportedModel: ...

    def source_outputs(
        self, path: Path, config: Path | None, names: list[str], inputs: list[Any]
    ) -> dict[str, Any]:
        """The output of each of the source's layers named in `names` that it exposes."""
        ...

    def weights_for(self, path: Path, config: Path | None, analysed: Any) -> dict[str, Any]:
        """The file's weights, canonical, for the spec imported from it."""
        ...


def inputs_of(nodes: Iterable[ImportedNode]) -> list[ImportedNode]:
    return [node for node in nodes if node.op == "input"]
