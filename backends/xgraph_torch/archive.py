"""What a `torch.save` archive declares, found without torch and without running its pickle.

A state dict file is a zip: `data.pkl` describes each tensor (storage, dtype, offset, shape,
strides) and `data/<key>` holds each storage's bytes. torch reads a storage with `mmap`
without comparing its size with the record's, and decompresses a compressed record whatever
it expands to; so before torch sees the file, this reads `data.pkl` with an unpickler that
knows only the few names a state dict uses (stand-ins, never torch's functions), and checks
every record: present, stored uncompressed, exactly as large as its declared storage, and
every tensor inside its storage.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeGuard

from xgraph.weights.archives import member, read_member
from xgraph.weights.checks import WeightFileError, shown

# torch's typed storage classes, as torch.save names them, and their element types.
_STORAGE_DTYPES = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
}
# Element types torch.save names on their own (with an untyped storage of bytes, through
# `_rebuild_tensor_v3`): those without a typed storage class.
_TENSOR_DTYPES = frozenset(
    {"uint16", "uint32", "uint64", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz"}
    | {"float8_e5m2fnuz", "float8_e8m0fnu", "complex32"}
)
_ITEM_SIZES = {
    "float64": 8,
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "int64": 8,
    "int32": 4,
    "int16": 2,
    "int8": 1,
    "uint8": 1,
    "bool": 1,
    "complex64": 8,
    "complex128": 16,
    "uint16": 2,
    "uint32": 4,
    "uint64": 8,
    "complex32": 4,
    **{name: 1 for name in _TENSOR_DTYPES if name.startswith("float8")},
}


class _Malformed(Exception):
    """The pickle describes something a state dict does not hold."""


def _refuse(message: str) -> NoReturn:
    raise _Malformed(message)


@dataclass(frozen=True)
class StorageRecord:
    """One storage: its element type, the zip record holding it, its element count."""

    dtype: str
    key: str
    numel: int

    def __setstate__(self, state: object) -> None:
        _refuse("the pickle sets attributes on a storage")


@dataclass(frozen=True)
class TensorRecord:
    """One tensor as a view of a storage, in elements of its own type."""

    storage: StorageRecord
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: str

    def last_element(self) -> int:
        """One past the last element the view reaches, counted from the storage's start."""
        if 0 in self.shape:
            return self.offset
        return (
            self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride, strict=True)) + 1
        )

    def __setstate__(self, state: object) -> None:
        _refuse("the pickle sets attributes on a tensor")


@dataclass(frozen=True)
class _StorageType:
    dtype: str


@dataclass(frozen=True)
class _DtypeName:
    name: str

    def __setstate__(self, state: object) -> None:
        _refuse("the pickle sets attributes on a storage type")


class _Mapping(dict):
    """collections.OrderedDict's stand-in; the `_metadata` that state dicts carry is ignored."""

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, dict):
            _refuse("the pickle sets a mapping's attributes from something not a mapping")


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _sizes(value: object, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(_is_count(n) for n in value):
        _refuse(f"a tensor's {what} is not a tuple of sizes")
    return value


def _view(
    storage: object, offset: object, shape: object, stride: object, dtype: str
) -> TensorRecord:
    if not isinstance(storage, StorageRecord) or not _is_count(offset):
        _refuse("a tensor is not a view of a storage")
    shape, stride = _sizes(shape, "shape"), _sizes(stride, "stride")
    if len(shape) != len(stride):
        _refuse("a tensor's shape and strides differ in length")
    return TensorRecord(storage, offset, shape, stride, dtype)


def _rebuild_tensor(
    storage: object, offset: object, shape: object, stride: object, *rest: object
) -> TensorRecord:
    """torch._utils._rebuild_tensor_v2: the tensor has its storage's type."""
    dtype = storage.dtype if isinstance(storage, StorageRecord) else ""
    return _view(storage, offset, shape, stride, dtype)


def _rebuild_tensor_of_type(
    storage: object,
    offset: object,
    shape: object,
    stride: object,
    requires_grad: object,
    hooks: object,
    dtype: object,
    *rest: object,
) -> TensorRecord:
    """torch._utils._rebuild_tensor_v3: a type of its own over a storage of bytes."""
    if not isinstance(dtype, _DtypeName):
        _refuse("a tensor's type is not a torch type")
    return _view(storage, offset, shape, stride, dtype.name)


def _rebuild_parameter(data: object, *rest: object) -> object:
    if not isinstance(data, TensorRecord):
        _refuse("a parameter holds no tensor")
    return data


_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): _Mapping,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_of_type,
    ("torch.storage", "UntypedStorage"): _StorageType("uint8"),
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    **{("torch", name): _StorageType(dtype) for name, dtype in _STORAGE_DTYPES.items()},
    **{("torch", name): _DtypeName(name) for name in _STORAGE_DTYPES.values()},
    **{("torch", name): _DtypeName(name) for name in _TENSOR_DTYPES},
}


class _DeclarationReader(pickle._Unpickler):  # the Python unpickler: its memo is a dict
    """Reads `data.pkl` into records; any name outside a state dict's few is refused."""

    def find_class(self, module: str, name: str) -> Any:
        found = _GLOBALS.get((module, name))
        if found is None:
            kind = f"{shown(module)}.{shown(name)}"
            _refuse(f"the file holds an object of type '{kind}', not only tensors")
        return found

    def persistent_load(self, pid: Any) -> StorageRecord:
        if not (
            isinstance(pid, tuple)
            and len(pid) == 5
            and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)
            and isinstance(pid[2], str)
            and _is_count(pid[4])
        ):
            _refuse("a storage reference is not ('storage', type, key, location, size)")
        return StorageRecord(pid[1].dtype, pid[2], pid[4])


@dataclass(frozen=True)
class ArchiveLimits:
    """The most entries and pickle bytes a state dict of the graph being read needs."""

    entries: int
    pickle_bytes: int


def _folder(archive: zipfile.ZipFile, path: Path) -> str:
    """The archive's top folder, where torch looks for every record (its first entry's)."""
    names = archive.namelist()
    if not names or "/" not in names[0]:
        raise WeightFileError(path, "not a torch.save archive (no top folder)")
    return names[0].split("/", 1)[0]


def scan_state_dict(
    archive: zipfile.ZipFile, path: Path, limits: ArchiveLimits
) -> dict[str, TensorRecord]:
    """Every tensor the archive declares, each checked against its record, by key."""
    folder = _folder(archive, path)
    pickled = member(archive, f"{folder}/data.pkl", limits.pickle_bytes, path, "the pickle")
    try:
        state = _DeclarationReader(io.BytesIO(read_member(archive, pickled, path))).load()
    except WeightFileError:
        raise
    except _Malformed as exc:
        raise WeightFileError(path, f"not a state dict: {exc}") from None
    except Exception as exc:  # any failure to parse hostile bytes is the file's
        raise WeightFileError(
            path, f"the pickle is damaged: {type(exc).__name__}: {shown(exc)}"
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(key, str) and isinstance(value, TensorRecord) for key, value in state.items()
    ):
        raise WeightFileError(path, "not a state dict (a mapping of names to tensors)")
    storages: dict[str, StorageRecord] = {}
    for key, tensor in state.items():
        if storages.setdefault(tensor.storage.key, tensor.storage) != tensor.storage:
            raise WeightFileError(
                path,
                f"'{shown(key)}': its storage is declared twice, with different types or sizes",
            )
        _check_record(archive, folder, path, shown(key), tensor)
    return dict(state)


def _check_record(
    archive: zipfile.ZipFile, folder: str, path: Path, key: str, tensor: TensorRecord
) -> None:
    storage = tensor.storage
    name = f"{folder}/data/{storage.key}"
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise WeightFileError(path, f"'{key}': its storage record is missing") from None
    if info.compress_type != zipfile.ZIP_STORED:
        raise WeightFileError(
            path,
            f"'{key}': its storage record is compressed (torch.save stores records as they are)",
        )
    storage_item = _ITEM_SIZES[storage.dtype]
    if info.file_size != storage.numel * storage_item:
        raise WeightFileError(
            path,
            f"'{key}': its storage declares {storage.numel:,} {storage.dtype} elements "
            f"({storage.numel * storage_item:,} bytes); the record holds {info.file_size:,} bytes",
        )
    reach, size = tensor.last_element() * _ITEM_SIZES[tensor.dtype], info.file_size
    if reach > size:
        raise WeightFileError(
            path,
            f"'{key}': a view of shape {shown(tensor.shape)} reaches byte {reach:,} "
            f"of a storage of {size:,}",
        )
