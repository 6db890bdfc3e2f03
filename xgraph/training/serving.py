"""The serving record: what a trained model needs besides its weights to be used on new
images, written into every artifact of a run so that none needs the spec at hand.

One JSON object (`FORMAT`, version 1): the spec's name, the class names in label order (the
training folder's sub-folders, sorted), the preprocessing (input size and colour, bilinear
resize, `x / 127.5 - 1`) and the activation of the model's output (`linear`: logits, a reader
applies softmax). It is stored
- in the run's `state.json`, under "serving";
- in a `.pt2` as the extra file `xgraph.json` (`torch.export.load(path, extra_files=...)`);
- in a `.keras` as the archive entry `xgraph.json` (Keras's `load_model` ignores it);
- in an `.onnx` as the metadata property `xgraph_serving`.
Writing and reading need no framework: zip entries, and a protobuf field for ONNX.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xgraph.errors import FileError
from xgraph.files import atomic_path
from xgraph.ir.analysis import AnalysedGraph
from xgraph.training.images import JPEG_DECODE, OFFSET, RESIZE, SCALE

FORMAT = "xgraph-serving"
VERSION = 1
ENTRY = "xgraph.json"  # the file's name in a .pt2 (extra/) and a .keras archive
ONNX_KEY = "xgraph_serving"
BACKEND_OF_SUFFIX = {".pt2": "torch", ".keras": "keras", ".onnx": "onnx"}  # the writer
SUFFIXES = tuple(BACKEND_OF_SUFFIX)
_MISSING_HINT = "xgraph train writes it into the models it exports (docs/training.md)"


@dataclass(frozen=True)
class Serving:
    """A trained model's classes, preprocessing and output activation."""

    spec: str
    classes: tuple[str, ...]
    input_shape: tuple[int, int, int]  # (H, W, C), C 1 (grey) or 3 (RGB)
    output_activation: str  # "linear" (logits), "softmax", or another activation

    @property
    def logits(self) -> bool:
        return self.output_activation == "linear"

    def as_dict(self) -> dict[str, Any]:
        height, width, channels = self.input_shape
        return {
            "format": FORMAT,
            "version": VERSION,
            "spec": self.spec,
            "classes": list(self.classes),
            "preprocessing": {
                "input_shape": [height, width, channels],
                "color": "RGB" if channels == 3 else "L",
                "resize": RESIZE,
                "jpeg": JPEG_DECODE,
                "scaling": f"x / {SCALE} {'-' if OFFSET < 0 else '+'} {abs(OFFSET):g}",
                "scale": SCALE,
                "offset": OFFSET,
            },
            "output_activation": self.output_activation,
        }

    @classmethod
    def from_dict(cls, data: Any, source: Path) -> Serving:
        """The record read back, checked: a FileError naming `source` and the bad field."""
        try:
            if data.get("format") != FORMAT or data.get("version") != VERSION:
                raise ValueError(f"not an {FORMAT} record of version {VERSION}")
            pre = data["preprocessing"]
            if (pre["resize"], pre["scale"], pre["offset"]) != (RESIZE, SCALE, OFFSET):
                raise ValueError(f"preprocessing {pre['scaling']!r} is not the one xgraph applies")
            shape = tuple(int(size) for size in pre["input_shape"])
            classes = tuple(str(name) for name in data["classes"])
            if len(shape) != 3 or shape[2] not in (1, 3) or min(shape) < 1 or not classes:
                raise ValueError(f"input shape {list(shape)}, {len(classes)} classes")
            return cls(str(data["spec"]), classes, shape, str(data["output_activation"]))
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise FileError(source, f"unreadable xgraph serving record: {error}") from None


def output_activation(analysed: AnalysedGraph) -> str:
    """The activation of the single output: an `activation` node's or a layer's own."""
    node = analysed.graph[analysed.graph.outputs[0]]
    return str(getattr(node.attrs, "activation", "linear"))


def serving_of(analysed: AnalysedGraph, classes: Sequence[str]) -> Serving:
    """The record of a run of `analysed` on a folder of `classes` (in label order)."""
    height, width, channels = (int(size) for size in analysed.input_shapes()[0])
    return Serving(
        analysed.name, tuple(classes), (height, width, channels), output_activation(analysed)
    )


def write_serving(path: Path, serving: Serving) -> None:
    """Add the record to an exported model file (replaced in one step)."""
    text = json.dumps(serving.as_dict(), indent=2) + "\n"
    with atomic_path(path) as temporary:
        shutil.copyfile(path, temporary)
        if path.suffix == ".onnx":
            with temporary.open("ab") as model:
                model.write(_onnx_property(ONNX_KEY, text))
        else:
            with zipfile.ZipFile(temporary, "a") as archive:
                archive.writestr(_entry_name(archive.namelist(), path.suffix), text)


def _entry_name(names: Sequence[str], suffix: str) -> str:
    """Where the record lies in a zip: a .pt2's extra files are under `ARCHIVE/extra/`."""
    if suffix == ".pt2" and names and "/" in names[0]:
        return f"{names[0].split('/', 1)[0]}/extra/{ENTRY}"
    return ENTRY


def read_serving(path: Path) -> Serving:
    """The record of a .pt2, .keras or .onnx file, or a FileError saying what is missing."""
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise FileError(
            path,
            f"not a model file xgraph reads ('{path.suffix or 'no suffix'}')",
            hint="a .pt2, .keras or .onnx file, or a training run's folder",
        )
    if not path.is_file():
        raise FileError(path, "no such file" if not path.exists() else "not a file")
    try:
        text = _onnx_record(path) if path.suffix == ".onnx" else _zip_record(path)
    except (OSError, zipfile.BadZipFile, ValueError) as error:
        raise FileError(path, f"cannot read this {path.suffix} model: {error}") from None
    if text is None:
        raise FileError(
            path,
            "this model has no xgraph serving record (class names, preprocessing)",
            hint=_MISSING_HINT,
        )
    try:
        data = json.loads(text)
    except ValueError as error:
        raise FileError(path, f"unreadable xgraph serving record: {error}") from None
    return Serving.from_dict(data, path)


def _zip_record(path: Path) -> str | None:
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name == ENTRY or name.endswith(f"/extra/{ENTRY}"):
                return archive.read(name).decode()
    return None


# An ONNX model is a protobuf ModelProto; its `metadata_props` (field 14) are key-value
# messages (fields 1 and 2). Appending a field to a message's bytes adds to a repeated field
# (protobuf's merge rule), so the record is written and read without the onnx package, which
# the core does not import.
_METADATA_PROPS = 14
_LENGTH_DELIMITED = 2


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | _LENGTH_DELIMITED) + _varint(len(data)) + data


def _onnx_property(key: str, value: str) -> bytes:
    return _field(_METADATA_PROPS, _field(1, key.encode()) + _field(2, value.encode()))


def _fields(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The length-delimited fields of a protobuf message (others skipped), or ValueError."""
    position = 0
    while position < len(data):
        tag, position = _read_varint(data, position)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise ValueError("not a protobuf message (field 0)")
        if wire == 0:
            _, position = _read_varint(data, position)
        elif wire in (1, 5):
            position += 8 if wire == 1 else 4
        elif wire == _LENGTH_DELIMITED:
            size, position = _read_varint(data, position)
            if position + size > len(data):
                raise ValueError("truncated")
            yield number, data[position : position + size]
            position += size
        else:
            raise ValueError(f"not an ONNX model (wire type {wire})")


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise ValueError("truncated")
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position, shift = position + 1, shift + 7
        if not byte & 0x80:
            return value, position


def _onnx_record(path: Path) -> str | None:
    props: dict[bytes, bytes] = {}
    for number, entry in _fields(path.read_bytes()):
        if number == _METADATA_PROPS:
            pair = dict(_fields(entry))
            props[pair.get(1, b"")] = pair.get(2, b"")
    found = props.get(ONNX_KEY.encode())
    return found.decode() if found is not None else None
