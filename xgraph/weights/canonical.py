"""The canonical weights format: safetensors, one tensor per node parameter.

Names are `<node>/<param>` (`block2_sepconv1/depthwise_kernel`), the parameter names and
shapes each op's definition gives, in Keras's channels-last layout: kernels (kh, kw, in, out),
depthwise kernels (kh, kw, in, multiplier), dense kernels (in, out); float32.

Reading parses the safetensors header here, checks every declared name, shape, type and
byte range against the graph and the file, and only then reads the tensors it needs.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from xgraph.files import save_atomically
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ops.base import format_shape
from xgraph.weights.checks import (
    ReadOptions,
    WeightFileError,
    as_float32,
    check_dtypes,
    shown,
)
from xgraph.weights.initial import Weights, weight_key

FORMAT = "xgraph-canonical"
VERSION = "1"

_MISFIT_HINT = "is the file from this architecture, with the same --set parameters?"

# safetensors dtype codes -> numpy names (bfloat16 has no numpy type: read by hand).
_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U64": "uint64",
    "U32": "uint32",
    "U16": "uint16",
    "U8": "uint8",
    "BOOL": "bool",
}
_ITEM_SIZES = {"bfloat16": 2, "bool": 1}

# A header lists names, types, shapes and offsets: about 100 bytes a tensor.
_HEADER_BYTES_BASE = 1 << 20
_HEADER_BYTES_PER_TENSOR = 4096


def expected_shapes(analysed: AnalysedGraph) -> dict[str, tuple[int, ...]]:
    return {
        weight_key(node.name, param.name): param.shape
        for node in analysed.graph.nodes
        for param in analysed.counts[node.name].params
    }


def integer_keys(analysed: AnalysedGraph) -> set[str]:
    """The canonical keys of the parameters a framework may keep as integers (counts)."""
    return {
        weight_key(node.name, param.name)
        for node in analysed.graph.nodes
        for param in analysed.counts[node.name].params
        if param.integer
    }


def _shape_shown(shape: tuple[int, ...]) -> str:
    """A declared shape, cut short: a hostile file may declare thousands of dimensions."""
    if len(shape) > 8:
        return f"{format_shape(shape[:8])[:-1]}, ... ({len(shape):,} dimensions)"
    return format_shape(shape)


def check_declared_shapes(
    analysed: AnalysedGraph, declared: Mapping[str, tuple[int, ...]], source: str | Path
) -> None:
    """Exactly the graph's tensors, each of its shape; a report of every difference if not."""
    expected = expected_shapes(analysed)
    missing = [key for key in expected if key not in declared]
    unexpected = [key for key in declared if key not in expected]
    wrong = [
        f"{key}: expected {format_shape(shape)}, found {_shape_shown(declared[key])}"
        for key, shape in expected.items()
        if key in declared and tuple(declared[key]) != shape
    ]
    if missing or unexpected or wrong:
        notes = [f"missing: {key} {format_shape(expected[key])}" for key in missing[:8]]
        notes += [
            f"not in the graph: {shown(key)} {_shape_shown(declared[key])}"
            for key in unexpected[:8]
        ]
        notes += [f"wrong shape: {line}" for line in wrong[:8]]
        raise WeightFileError(
            source,
            f"the weights do not fit '{analysed.name}': {len(missing)} missing, "
            f"{len(unexpected)} not in the graph, {len(wrong)} of the wrong shape",
            hint=_MISFIT_HINT,
            notes=notes,
        )


def check_complete(analysed: AnalysedGraph, weights: Weights, source: str | Path) -> Weights:
    """Exactly the graph's tensors, each of its shape, as float32 in the graph's order."""
    check_declared_shapes(analysed, {key: tuple(v.shape) for key, v in weights.items()}, source)
    return {key: as_float32(weights[key]) for key in expected_shapes(analysed)}


def _header_limit(analysed: AnalysedGraph) -> int:
    return _HEADER_BYTES_BASE + _HEADER_BYTES_PER_TENSOR * len(expected_shapes(analysed))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"the key '{shown(key)}' appears twice")
        found[key] = value
    return found


def _refuse_constant(name: str) -> None:
    raise ValueError(f"'{name}' is not JSON")


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class _Entry:
    """One tensor as the header declares it: type, shape and byte range in the data."""

    def __init__(self, name: str, raw: object, data_size: int, source: Path) -> None:
        if not isinstance(raw, dict):
            raise WeightFileError(
                source, f"tensor '{shown(name)}': its header entry is not a mapping"
            )
        dtype, shape, offsets = raw.get("dtype"), raw.get("shape"), raw.get("data_offsets")
        if not isinstance(dtype, str):
            raise WeightFileError(source, f"tensor '{shown(name)}': 'dtype' is not a string")
        if not isinstance(shape, list) or not all(_is_count(n) for n in shape):
            raise WeightFileError(source, f"tensor '{shown(name)}': 'shape' is not a list of sizes")
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(_is_count(n) for n in offsets)
            and offsets[0] <= offsets[1]
        ):
            raise WeightFileError(
                source, f"tensor '{shown(name)}': 'data_offsets' is not a byte range [begin, end]"
            )
        if offsets[1] > data_size:
            raise WeightFileError(
                source,
                f"truncated, or damaged: tensor '{shown(name)}' ends at byte {offsets[1]:,} of "
                f"the data, and the file holds {data_size:,}",
            )
        self.dtype = _DTYPES.get(dtype, dtype)
        self.shape = tuple(shape)
        self.begin, self.end = offsets

    def check_size(self, name: str, source: Path) -> None:
        item_size = _ITEM_SIZES.get(self.dtype) or np.dtype(self.dtype).itemsize
        needed = math.prod(self.shape) * item_size
        if self.end - self.begin != needed:
            raise WeightFileError(
                source,
                f"tensor '{shown(name)}' declares {format_shape(self.shape)} {self.dtype} "
                f"({needed:,} bytes) but spans {self.end - self.begin:,} bytes",
            )

    def read(self, file: Any, data_start: int) -> np.ndarray:
        file.seek(data_start + self.begin)
        data = bytearray(file.read(self.end - self.begin))  # writable, as arrays must be
        if self.dtype == "bfloat16":  # the upper half of a float32
            halves = np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16
            return halves.view(np.float32).reshape(self.shape)
        return np.frombuffer(data, dtype=np.dtype(self.dtype).newbyteorder("<")).reshape(self.shape)


def _read_header(file: Any, path: Path, file_size: int, limit: int) -> tuple[dict, int]:
    """The parsed header and where the data starts, within the size limit for this graph."""
    prefix = file.read(8)
    if len(prefix) < 8:
        raise WeightFileError(path, f"not a safetensors file: {file_size} bytes, no header")
    (header_size,) = struct.unpack("<Q", prefix)
    if header_size > file_size - 8:
        raise WeightFileError(
            path,
            f"not a safetensors file, or truncated: the header claims {header_size:,} bytes, "
            f"the file has {file_size - 8:,} after its size",
        )
    if header_size > limit:
        raise WeightFileError(
            path,
            f"the safetensors header takes {header_size:,} bytes, more than the {limit:,} "
            "bytes this graph's tensors can need",
        )
    text = file.read(header_size)
    try:
        header = json.loads(
            text.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_refuse_constant
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WeightFileError(path, f"the safetensors header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise WeightFileError(path, "the safetensors header is not a JSON object")
    return header, 8 + header_size


def _check_metadata(header: dict, path: Path) -> None:
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        raise WeightFileError(path, "'__metadata__' is not a mapping of strings to strings")


def read_canonical(path: Path, analysed: AnalysedGraph, options: ReadOptions) -> Weights:
    """Canonical weights from a safetensors file, every declaration checked before any data
    is read; bfloat16 and other non-float types only with `accept_bad_values`."""
    file_size = path.stat().st_size
    with path.open("rb") as file:
        header, data_start = _read_header(file, path, file_size, _header_limit(analysed))
        _check_metadata(header, path)
        entries = {
            name: _Entry(name, raw, file_size - data_start, path) for name, raw in header.items()
        }
        check_declared_shapes(analysed, {name: e.shape for name, e in entries.items()}, path)
        integers = integer_keys(analysed)
        check_dtypes({name: e.dtype for name, e in entries.items()}, path, options, integers)
        for name, entry in entries.items():
            entry.check_size(name, path)
        return {name: as_float32(entry.read(file, data_start)) for name, entry in entries.items()}


def write_canonical(path: Path, analysed: AnalysedGraph, weights: Weights) -> None:
    from safetensors.numpy import save_file

    # np.array, not np.ascontiguousarray, which makes a 0-d array (a count) 1-d
    tensors = {key: np.array(value, dtype=np.float32, order="C") for key, value in weights.items()}
    metadata = {"format": FORMAT, "version": VERSION, "graph": analysed.name}
    save_atomically(path, lambda target: save_file(tensors, str(target), metadata=metadata))
