"""`xgraph import` of ONNX files: a channels-first (NCHW) graph, as torch.onnx.export writes
one, read with the onnx package (nothing runs) into an ImportedModel in the spec's (H, W, C)
terms, with its weights in xgraph's canonical layouts.

Each ONNX value of rank 4 is channels-first, or channels-last after a Transpose that moves
the channels last (as ops defined on channels-last values need: LayerNormalization of the
channels, a MatMul on them, a Reshape or Flatten in (H, W, C) order); a Transpose is no node
of the spec, only a change of layout. The ops each ONNX op becomes: xgraph_onnx.import_ops,
import_arithmetic and import_shapes (the reading's state: import_state); xgraph's own
two-part nodes as one: import_patterns. Anything else is listed at once, as unsupported."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import numpy as np

from xgraph.importing.model import (
    ImportedModel,
    ImportedNode,
    ImportFileError,
    unsupported_error,
)
from xgraph_onnx.import_arithmetic import READERS as ARITHMETIC
from xgraph_onnx.import_file import CheckedModel, load_checked, run_values
from xgraph_onnx.import_ops import READERS as OWN_OPS
from xgraph_onnx.import_patterns import merged
from xgraph_onnx.import_shapes import READERS as SHAPES
from xgraph_onnx.import_state import Reader, node_name

SUFFIXES = (".onnx",)
READERS = {**OWN_OPS, **ARITHMETIC, **SHAPES}


def read_graph(reader: Reader) -> ImportedModel:
    """The file's graph as an ImportedModel: every node read, then the patterns merged."""
    inputs = [v for v in reader.graph.input if v.name not in reader.constants]
    for value in inputs:
        shape = reader.shapes[value.name]
        if len(shape) != 4 or -1 in shape[1:]:
            raise ImportFileError(reader.path, f"input '{value.name}' is not a fixed NCHW image")
        name = node_name(value.name, "input", 0, reader.taken)
        reader.nodes.append(ImportedNode(name, "input", {"shape": [*shape[2:], shape[1]]}, ()))
        reader.value_node[value.name] = name
    for index, node in enumerate(reader.graph.node):  # no Constant node is left: folded
        read_node(reader, node, index)
    if reader.unsupported:
        raise unsupported_error(reader.path, reader.unsupported)
    for value in reader.graph.output:
        if value.name in reader.channels_last:
            raise ImportFileError(reader.path, f"output '{value.name}' is channels-last")
    reader.nodes, renamed = merged(reader.nodes, reader.weights, reader.renames)
    reader.value_node = {v: renamed.get(n, n) for v, n in reader.value_node.items()}
    outputs = tuple(reader.value_node[v.name] for v in reader.graph.output)
    name = re.sub(r"[^0-9A-Za-z_]", "_", reader.graph.name or reader.path.stem) or "imported"
    return ImportedModel(name, tuple(reader.nodes), outputs, str(reader.path))


def read_node(reader: Reader, node: Any, index: int) -> None:
    tensors = [v for v in node.input if v and v not in reader.constants]
    sources = [reader.source(v, node) for v in tensors]
    read = READERS.get(node.op_type)
    if read is None:
        reader.refuse(node, index)
        return
    try:
        read(reader, node, index, sources, reader.attrs(node))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        reader.refuse(node, index, str(exc).strip("'\""))


def _read(path: Path) -> tuple[CheckedModel, Reader, ImportedModel]:
    """The checked file, its reader and the model read, once per file's version: `import`
    reads the model, then its weights, then (`--check`) runs it."""
    stat = path.stat()
    return _read_version(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _read_version(
    path: str, mtime_ns: int, size: int
) -> tuple[CheckedModel, Reader, ImportedModel]:
    checked = load_checked(Path(path))
    reader = Reader(Path(path), checked)
    return checked, reader, read_graph(reader)


def read_model(path: Path, config: Path | None = None) -> ImportedModel:
    if config is not None:
        raise ImportFileError(config, "an ONNX file holds its graph: --config is for Keras files")
    return _read(path)[2]


def weights_for(path: Path, config: Path | None, analysed: Any) -> dict[str, np.ndarray]:
    """The file's weights, in xgraph's canonical layouts, keyed as the imported spec's."""
    reader = _read(path)[1]
    # np.array, not np.ascontiguousarray: that makes a count's 0-d array 1-d
    return {key: np.array(v, dtype=np.float32, order="C") for key, v in reader.weights.items()}


def source_outputs(
    path: Path, config: Path | None, names: list[str], inputs: list[Any]
) -> dict[str, Any]:
    """The ONNX file run by ONNX Runtime, every value that is a node of the spec exposed as
    an output, in the spec's channels-last terms."""
    checked, reader, _ = _read(path)
    wanted = {
        node: value
        for value, node in reader.value_node.items()
        if node in names and reader.layout_of(value) != "last"
    }
    images = [v.name for v in checked.model.graph.input if v.name not in reader.constants]
    values = run_values(checked.model, images, list(wanted.values()), inputs)
    return dict(zip(wanted, values, strict=True))
