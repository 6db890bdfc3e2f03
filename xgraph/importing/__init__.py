"""`xgraph import`: a model file of another framework read into an ImportedModel by the
importer registered for its suffix (`xgraph.importers` entry points), then written as a
spec (xgraph.importing.write)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from xgraph.errors import SpecError
from xgraph.importing.blocks import recover
from xgraph.importing.model import ImportedModel, ImportFileError
from xgraph.importing.write import spec_text
from xgraph.plugins import IMPORTERS, loaded

if TYPE_CHECKING:
    from xgraph.ir.analysis import AnalysedGraph


def read_model(path: str | Path, config: str | Path | None = None) -> ImportedModel:
    """The model in `path` (with `config`, a separate model config, where the file holds
    only weights), by the importer for the file's suffix."""
    path = Path(path)
    if not path.is_file():
        raise ImportFileError(path, "no such file")
    if config is not None and not Path(config).is_file():
        raise ImportFileError(config, "no such file")
    return importer_for(path).read_model(path, Path(config) if config is not None else None)


def importer_for(path: Path) -> Any:
    """The importer module that reads `path`'s suffix."""
    suffixes: dict[str, Any] = {}
    for _, module in loaded(IMPORTERS):
        for suffix in module.SUFFIXES:
            suffixes.setdefault(suffix, module)
    module = suffixes.get(path.suffix.lower())
    if module is None:
        known = ", ".join(sorted(suffixes)) or "none: no importer is installed"
        raise ImportFileError(path, f"no importer reads '{path.suffix}' files (it reads: {known})")
    return module


def imported_spec(
    path: str | Path,
    file: str,
    config: str | Path | None = None,
    name: str | None = None,
    structure: bool = True,
) -> tuple[str, AnalysedGraph]:
    """The spec text for the model in `path`, and its analysis: the text is compiled as
    the file `file` it will be written to, so that a spec that would not validate is never
    written (an importer's mistake, reported as one, with the spec's own error as a note)."""
    from xgraph.api import loads

    model = read_model(path, config)
    flat = spec_text(model, name, origin=Path(path).name)
    try:
        analysed = loads(flat, file=file)
    except SpecError as exc:
        raise ImportFileError(
            path,
            "the spec written from this file does not validate (an importer bug: please "
            "report it with the file)",
            notes=[exc.format()],
        ) from exc
    blocks = recover(model) if structure else []
    if not blocks:
        return flat, analysed
    text = spec_text(model, name, origin=Path(path).name, blocks=blocks)
    try:
        recovered = loads(text, file=file)
    except SpecError:
        return flat, analysed  # a recovery the language cannot say: the flat spec stands
    return (text, recovered) if same_graph(recovered, analysed) else (flat, analysed)


def same_graph(a: AnalysedGraph, b: AnalysedGraph) -> bool:
    """Node for node the same network: names, order, ops, attributes and inputs."""
    nodes = list(a.graph.nodes), list(b.graph.nodes)
    if [n.name for n in nodes[0]] != [n.name for n in nodes[1]]:
        return False
    return all(
        (x.op, x.attrs, x.inputs) == (y.op, y.attrs, y.inputs) for x, y in zip(*nodes, strict=True)
    )


__all__ = ["ImportFileError", "ImportedModel", "imported_spec", "read_model"]
