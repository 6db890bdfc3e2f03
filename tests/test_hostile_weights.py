"""Hostile weight files end in a clean, named refusal: exit status 2, `FILE: error: ...`, no
traceback, no output, within 500 MB of memory beyond the cost of importing the framework,
and under a CPU ceiling each (tests/fuzzing.py's CPU_CEILING_S, each test printing its case's
figure with `pytest -rP`).

Every file is made small here, from examples/specs/tiny_cnn.yaml. All cases run in one
subprocess that imports torch, h5py and safetensors first (their import is not a case's cost),
then runs each case through `xgraph.cli.main` and measures its CPU time. The ceiling is against
runaway work, not a speed test: the slowest case took 0.05 s of CPU (Intel Xeon, 2026-12-03),
so a slow or loaded machine passes, while a reader that loops on a file never ends (the HDF5
global heap of lg_global_heap_that_never_ends did) and fails here, killed by RLIMIT_CPU at
twice the ceiling if the case does not end by itself. A reader that allocates or inflates what
a file claims (gigabytes to a terabyte here) runs into the memory budget, not the ceiling.
Memory is bounded with RLIMIT_DATA set to the process's data size after those imports plus
500 MB, so an allocation beyond the budget fails in the case that makes it; RLIMIT_AS is
impractical, as torch alone reserves gigabytes of address space it never uses. The peak
resident size over the whole batch is checked against the same budget.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
from fuzzing import CPU_CEILING_S
from safetensors.numpy import load_file

from xgraph.api import load
from xgraph.backend.rules import op_rules
from xgraph.ir.analysis import AnalysedGraph
from xgraph.weights.formats import read_weights, write_weights
from xgraph.weights.initial import Weights, random_weights, weight_key
from xgraph_keras.layer_order import keras_layer_order
from xgraph_keras.rules.base import class_key

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "examples" / "specs" / "tiny_cnn.yaml"
MEMORY_BUDGET = 500 << 20


# ---------------------------------------------------------------------------------------------
# Valid files of every format, in each format's own layout


def tiny() -> AnalysedGraph:
    return load(TINY)


def keras_layers(analysed: AnalysedGraph) -> list[tuple[str, str, str, list[str]]]:
    """(Keras 3 key, layer name, class, canonical tensor keys) in Keras's model.layers order."""
    rules = op_rules("keras")
    counts: Counter[str] = Counter()
    layers = []
    for name in keras_layer_order(analysed):
        op = analysed.graph[name].op
        cls = rules[op].layer_class or ("InputLayer" if op == "input" else "Activation")
        index = counts[class_key(cls)]
        counts[class_key(cls)] += 1
        key = class_key(cls) if index == 0 else f"{class_key(cls)}_{index}"
        params = [weight_key(name, p.name) for p in analysed.counts[name].params]
        layers.append((key, name, cls, params))
    return layers


def write_weights_h5(target: Any, analysed: AnalysedGraph, weights: Weights) -> None:
    """Keras 3's `.weights.h5` layout: layers keyed by class and position, `vars/0`, ..."""
    with h5py.File(target, "w") as h5:
        for key, _, _, params in keras_layers(analysed):
            group = h5.create_group(f"layers/{key}")
            if params:
                variables = group.create_group("vars")
                for i, param in enumerate(params):
                    variables.create_dataset(str(i), data=weights[param])


def write_legacy_h5(path: Path, analysed: AnalysedGraph, weights: Weights) -> None:
    """The legacy HDF5 layout: a group per layer name, `layer_names` and `weight_names`."""
    with h5py.File(path, "w") as h5:
        layers = keras_layers(analysed)
        h5.attrs["layer_names"] = [name.encode() for _, name, _, _ in layers]
        for _, name, _, params in layers:
            group = h5.create_group(name)
            names = [f"{name}/{param.split('/')[1]}:0" for param in params]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for weight_name, param in zip(names, params, strict=True):
                group.create_dataset(weight_name, data=weights[param])


def keras_config(analysed: AnalysedGraph) -> dict[str, Any]:
    layers = [
        {"class_name": cls, "config": {"name": name}} for _, name, cls, _ in keras_layers(analysed)
    ]
    return {"class_name": "Functional", "config": {"name": analysed.name, "layers": layers}}


def keras_archive(
    path: Path,
    config: bytes,
    weights_h5: bytes | None,
    compression: int = zipfile.ZIP_STORED,
    extra: int = 0,
) -> Path:
    """A `.keras` zip: config.json, metadata.json, model.weights.h5 and `extra` stray entries."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        archive.writestr("metadata.json", b'{"keras_version": "3"}')
        archive.writestr("config.json", config)
        if weights_h5 is not None:
            archive.writestr("model.weights.h5", weights_h5)
        for i in range(extra):
            archive.writestr(f"assets/{i}", b"")
    return path


def h5_bytes(analysed: AnalysedGraph, weights: Weights) -> bytes:
    buffer = io.BytesIO()
    write_weights_h5(buffer, analysed, weights)
    return buffer.getvalue()


def write_keras(path: Path, analysed: AnalysedGraph, weights: Weights) -> Path:
    config = json.dumps(keras_config(analysed)).encode()
    return keras_archive(path, config, h5_bytes(analysed, weights))


def write_all_formats(folder: Path, analysed: AnalysedGraph, weights: Weights) -> dict[str, Path]:
    """One valid file per format, all holding `weights`."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "safetensors": folder / "good.safetensors",
        "pt": folder / "good.pt",
        "weights_h5": folder / "good.weights.h5",
        "legacy_h5": folder / "good.h5",
        "keras": folder / "good.keras",
    }
    write_weights(files["safetensors"], analysed, weights)
    write_weights(files["pt"], analysed, weights)
    write_weights_h5(files["weights_h5"], analysed, weights)
    write_legacy_h5(files["legacy_h5"], analysed, weights)
    write_keras(files["keras"], analysed, weights)
    return files


def test_valid_files_of_every_format_read_back(tmp_path: Path) -> None:
    """The layouts made here are those xgraph reads (real Keras files: test_weights.py)."""
    analysed = tiny()
    weights = random_weights(analysed, seed=1)
    for fmt, path in write_all_formats(tmp_path, analysed, weights).items():
        read = read_weights(path, analysed)
        assert read.keys() == weights.keys(), fmt
        for key, value in weights.items():
            assert np.array_equal(read[key], value), (fmt, key)


# ---------------------------------------------------------------------------------------------
# Making hostile files


def safetensors_parts(path: Path) -> tuple[dict[str, Any], bytes]:
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + size]), data[8 + size :]


def safetensors_file(path: Path, header: dict[str, Any] | str | bytes, data: bytes) -> Path:
    if isinstance(header, dict):
        header = json.dumps(header)
    if isinstance(header, str):
        header = header.encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    return path


def safetensors_tensors(path: Path, tensors: dict[str, tuple[str, bytes, list[int]]]) -> Path:
    """A safetensors file of (dtype code, bytes, shape) per name, laid out as the format says."""
    header: dict[str, Any] = {}
    data = b""
    for name, (code, raw, shape) in tensors.items():
        header[name] = {
            "dtype": code,
            "shape": shape,
            "data_offsets": [len(data), len(data) + len(raw)],
        }
        data += raw
    return safetensors_file(path, header, data)


def canonical_with(good: Path, path: Path, key: str, code: str, value: np.ndarray) -> Path:
    """The good canonical file with one tensor replaced by `value`, declared of type `code`
    (bfloat16: the upper halves of float32 values)."""
    tensors = {
        name: ("F32", array.tobytes(), list(array.shape)) for name, array in load_file(good).items()
    }
    if code == "BF16":
        raw = (value.astype(np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
    else:
        raw = np.ascontiguousarray(value).tobytes()
    tensors[key] = (code, raw, list(value.shape))
    return safetensors_tensors(path, tensors)


def state_dict(good: Path) -> dict[str, torch.Tensor]:
    return torch.load(good, weights_only=True)


def saved_state(path: Path, state: object, **options: Any) -> Path:
    torch.save(state, path, **options)
    return path


def rezipped(
    source: Path,
    path: Path,
    edit: Callable[[str, bytes], bytes] = lambda name, data: data,
    compress: Callable[[str], bool] = lambda name: False,
    extra: int = 0,
) -> Path:
    """A copy of a zip archive, each entry's bytes through `edit`, compressed where asked."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as copy:
        for info in original.infolist():
            kind = zipfile.ZIP_DEFLATED if compress(info.filename) else zipfile.ZIP_STORED
            copy.writestr(info.filename, edit(info.filename, original.read(info)), kind)
        for i in range(extra):
            copy.writestr(f"stray/{i}", b"")
    return path


def understated_sizes(path: Path, name: str, declared: int) -> Path:
    """The archive with `name`'s decompressed size given as `declared` in both its headers."""
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    entries, _, at = struct.unpack_from("<HLL", data, end + 10)
    for _ in range(entries):
        name_length, extra_length, comment_length = struct.unpack_from("<3H", data, at + 28)
        if data[at + 46 : at + 46 + name_length] == name.encode():
            struct.pack_into("<L", data, at + 24, declared)
            (local,) = struct.unpack_from("<L", data, at + 42)
            struct.pack_into("<L", data, local + 22, declared)
        at += 46 + name_length + extra_length + comment_length
    path.write_bytes(bytes(data))
    return path


def h5_edited(source: Path, path: Path, edit: Callable[[h5py.File], None]) -> Path:
    path.write_bytes(source.read_bytes())
    with h5py.File(path, "r+") as h5:
        edit(h5)
    return path


def set_attribute(owner: h5py.Group, name: str, value: Any) -> None:
    owner.attrs[name] = value  # replaces it, whatever its former shape and type


def replace_dataset(h5: h5py.File, where: str, **dataset: Any) -> None:
    del h5[where]
    h5.create_dataset(where, **dataset)


@dataclass(frozen=True)
class Case:
    """A hostile file, the message fragment its refusal must hold, and how it is read."""

    make: Callable[[Path, dict[str, Path]], Path]
    reported: str
    command: str = "weights"  # weights | build | parity
    accept_bad_values: bool = False
    code: int = 2


CASES: dict[str, Case] = {}


def hostile(reported: str, **options: Any) -> Callable[[Callable], Callable]:
    def register(make: Callable[[Path, dict[str, Path]], Path]) -> Callable:
        CASES[make.__name__] = Case(make, reported, **options)
        return make

    return register


# ----- canonical safetensors


@hostile("no header")
def st_empty(folder: Path, good: dict[str, Path]) -> Path:
    path = folder / "empty.safetensors"
    path.write_bytes(b"")
    return path


@hostile("the header claims 1,099,511,627,776 bytes")
def st_header_beyond_the_file(folder: Path, good: dict[str, Path]) -> Path:
    path = folder / "x.safetensors"
    path.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    return path


@hostile("more than the")
def st_header_larger_than_the_graph_needs(folder: Path, good: dict[str, Path]) -> Path:
    return safetensors_file(folder / "x.safetensors", " " * (4 << 20), b"")


@hostile("not valid JSON")
def st_header_not_json(folder: Path, good: dict[str, Path]) -> Path:
    return safetensors_file(folder / "x.safetensors", "{nope", b"")


@hostile("not valid JSON")
def st_header_nested_deeply(folder: Path, good: dict[str, Path]) -> Path:
    return safetensors_file(folder / "x.safetensors", "[" * 200_000 + "]" * 200_000, b"")


@hostile("not a JSON object")
def st_header_a_list(folder: Path, good: dict[str, Path]) -> Path:
    return safetensors_file(folder / "x.safetensors", "[]", b"")


@hostile("the key 'a' appears twice")
def st_duplicate_key(folder: Path, good: dict[str, Path]) -> Path:
    return safetensors_file(folder / "x.safetensors", '{"a": 1, "a": 2}', b"")


@hostile("tensor 'conv2d/kernel': its header entry is not a mapping")
def st_entry_not_a_mapping(folder: Path, good: dict[str, Path]) -> Path:
    header, data = safetensors_parts(good["safetensors"])
    header["conv2d/kernel"] = 5
    return safetensors_file(folder / "x.safetensors", header, data)


@hostile("tensor 'conv2d/kernel': 'shape' is not a list of sizes")
def st_negative_shape(folder: Path, good: dict[str, Path]) -> Path:
    header, data = safetensors_parts(good["safetensors"])
    header["conv2d/kernel"]["shape"] = [-1, 3]
    return safetensors_file(folder / "x.safetensors", header, data)


@hostile("'data_offsets' is not a byte range")
def st_offsets_backwards(folder: Path, good: dict[str, Path]) -> Path:
    header, data = safetensors_parts(good["safetensors"])
    header["conv2d/kernel"]["data_offsets"] = [100, 10]
    return safetensors_file(folder / "x.safetensors", header, data)


@hostile("tensor 'conv2d/kernel' ends at byte 1,099,511,627,776 of the data")
def st_offsets_outside_the_file(folder: Path, good: dict[str, Path]) -> Path:
    header, data = safetensors_parts(good["safetensors"])
    header["conv2d/kernel"]["data_offsets"] = [0, 1 << 40]
    return safetensors_file(folder / "x.safetensors", header, data)


@hostile("wrong shape: conv2d/kernel: expected (3, 3, 3, 16), found (100000, 100000)")
def st_huge_declared_shape(folder: Path, good: dict[str, Path]) -> Path:
    header, data = safetensors_parts(good["safetensors"])
    header["conv2d/kernel"]["shape"] = [100_000, 100_000]
    return safetensors_file(folder / "x.safetensors", header, data)


@hostile("tensor 'conv2d/kernel' declares (3, 3, 3, 16) float32 (1,728 bytes) but spans 4 bytes")
def st_size_unlike_the_shape(folder: Path, good: dict[str, Path]) -> Path:
    header, data = safetensors_parts(good["safetensors"])
    begin = header["conv2d/kernel"]["data_offsets"][0]
    header["conv2d/kernel"]["data_offsets"] = [begin, begin + 4]
    return safetensors_file(folder / "x.safetensors", header, data)


@hostile("'__metadata__' is not a mapping of strings to strings")
def st_metadata_not_strings(folder: Path, good: dict[str, Path]) -> Path:
    header, data = safetensors_parts(good["safetensors"])
    header["__metadata__"] = {"format": 1}
    return safetensors_file(folder / "x.safetensors", header, data)


def st_bfloat16(folder: Path, good: dict[str, Path]) -> Path:
    kernel = load_file(good["safetensors"])["logits/kernel"]
    return canonical_with(
        good["safetensors"], folder / "x.safetensors", "logits/kernel", "BF16", kernel
    )


hostile("logits/kernel: bfloat16")(st_bfloat16)
CASES["st_bfloat16_accepted"] = Case(st_bfloat16, "", accept_bad_values=True, code=0)


@hostile("1 tensor(s) are not float32 or float64")
def st_int64(folder: Path, good: dict[str, Path]) -> Path:
    bias = np.arange(32, dtype=np.int64)
    return canonical_with(
        good["safetensors"], folder / "x.safetensors", "conv2d_1/bias", "I64", bias
    )


@hostile("conv2d_1/bias: bool")
def st_bool(folder: Path, good: dict[str, Path]) -> Path:
    bias = np.ones(32, dtype=np.bool_)
    return canonical_with(
        good["safetensors"], folder / "x.safetensors", "conv2d_1/bias", "BOOL", bias
    )


@hostile("conv2d_1/bias: float16")
def st_float16(folder: Path, good: dict[str, Path]) -> Path:
    bias = np.ones(32, dtype=np.float16)
    return canonical_with(
        good["safetensors"], folder / "x.safetensors", "conv2d_1/bias", "F16", bias
    )


@hostile("cannot be read as float32")
def st_float8(folder: Path, good: dict[str, Path]) -> Path:
    bias = np.ones(32, dtype=np.uint8)
    return canonical_with(
        good["safetensors"], folder / "x.safetensors", "conv2d_1/bias", "F8_E4M3", bias
    )


def st_nan(folder: Path, good: dict[str, Path]) -> Path:
    kernel = load_file(good["safetensors"])["conv2d/kernel"]
    kernel.flat[[0, 5]] = np.nan
    kernel.flat[7] = np.inf
    return canonical_with(
        good["safetensors"], folder / "x.safetensors", "conv2d/kernel", "F32", kernel
    )


hostile("conv2d/kernel: 2 NaN, 1 infinite of 432 values")(st_nan)
CASES["st_nan_accepted"] = Case(st_nan, "", accept_bad_values=True, code=0)
CASES["st_nan_parity"] = Case(st_nan, "conv2d/kernel: 2 NaN", command="parity")


@hostile("logits/bias: 1 infinite of 10 values")
def st_float64_beyond_float32(folder: Path, good: dict[str, Path]) -> Path:
    """A float64 too large for float32: infinite once converted, and said so, quietly."""
    bias = load_file(good["safetensors"])["logits/bias"].astype(np.float64)
    bias[3] = 1e39
    return canonical_with(good["safetensors"], folder / "x.safetensors", "logits/bias", "F64", bias)


@hostile("batch_norm/moving_variance: 3 negative (a variance cannot be negative)")
def st_negative_variance(folder: Path, good: dict[str, Path]) -> Path:
    variance = load_file(good["safetensors"])["batch_norm/moving_variance"]
    variance[:3] = -1.0
    return canonical_with(
        good["safetensors"], folder / "x.safetensors", "batch_norm/moving_variance", "F32", variance
    )


@hostile("not a regular file")
def st_a_directory(folder: Path, good: dict[str, Path]) -> Path:
    path = folder / "folder.safetensors"
    path.mkdir()
    return path


@hostile("not a regular file")
def st_a_device(folder: Path, good: dict[str, Path]) -> Path:
    path = folder / "zero.safetensors"
    path.symlink_to("/dev/zero")
    return path


# ----- torch state dicts


@hostile("the file is empty, not a torch state dict")
def pt_empty(folder: Path, good: dict[str, Path]) -> Path:
    path = folder / "empty.pt"
    path.write_bytes(b"")
    return path


@hostile("not a torch state dict (torch.save writes a zip archive)")
def pt_not_a_zip(folder: Path, good: dict[str, Path]) -> Path:
    path = folder / "x.pt"
    path.write_bytes(b"hello, world")
    return path


@hostile("a torch file in the format before torch 1.6")
def pt_legacy_format(folder: Path, good: dict[str, Path]) -> Path:
    return saved_state(
        folder / "x.pt", state_dict(good["pt"]), _use_new_zipfile_serialization=False
    )


@hostile("the file holds an object of type 'argparse.Namespace', not only tensors")
def pt_foreign_object(folder: Path, good: dict[str, Path]) -> Path:
    return saved_state(folder / "x.pt", {"conv2d.weight": argparse.Namespace(a=1)})


@hostile("not a state dict (a mapping of names to tensors)")
def pt_a_list(folder: Path, good: dict[str, Path]) -> Path:
    return saved_state(folder / "x.pt", list(state_dict(good["pt"]).values()))


@hostile("not a state dict (a mapping of names to tensors)")
def pt_a_number_for_a_tensor(folder: Path, good: dict[str, Path]) -> Path:
    return saved_state(folder / "x.pt", {**state_dict(good["pt"]), "conv2d.weight": 3})


@hostile(
    "'conv2d.weight': its storage declares 432 float32 elements (1,728 bytes); "
    "the record holds 100 bytes"
)
def pt_short_record(folder: Path, good: dict[str, Path]) -> Path:
    def cut(name: str, data: bytes) -> bytes:
        return data[:100] if name.endswith("/data/0") else data

    return rezipped(good["pt"], folder / "x.pt", cut)


@hostile("'conv2d.weight': its storage record is compressed")
def pt_compressed_record(folder: Path, good: dict[str, Path]) -> Path:
    return rezipped(good["pt"], folder / "x.pt", compress=lambda name: name.endswith("/data/0"))


@hostile("(the pickle) expands to 16,77")
def pt_pickle_bomb(folder: Path, good: dict[str, Path]) -> Path:
    def pad(name: str, data: bytes) -> bytes:
        return data + bytes(16 << 20) if name.endswith("data.pkl") else data

    return rezipped(
        good["pt"], folder / "x.pt", pad, compress=lambda name: name.endswith("data.pkl")
    )


@hostile("entries in")
def pt_many_entries(folder: Path, good: dict[str, Path]) -> Path:
    return rezipped(good["pt"], folder / "x.pt", extra=500)


@hostile("'conv2d.weight': a view of shape (16, 3, 3, 3) reaches byte 1,748 of a storage of 1,728")
def pt_view_beyond_its_storage(folder: Path, good: dict[str, Path]) -> Path:
    def shift(name: str, data: bytes) -> bytes:
        if not name.endswith("data.pkl"):
            return data
        at = data.index(b"QK\x00")  # the first tensor's storage offset, 0, after BINPERSID
        return data[:at] + b"QK\x05" + data[at + 3 :]

    return rezipped(good["pt"], folder / "x.pt", shift)


@hostile("'conv2d.weight' has shape (100000, 100000), node 'conv2d' needs (16, 3, 3, 3)")
def pt_huge_declared_shape(folder: Path, good: dict[str, Path]) -> Path:
    state = state_dict(good["pt"])
    state["conv2d.weight"] = torch.zeros(1).expand(100_000, 100_000)
    return saved_state(folder / "x.pt", state)


def pt_bfloat16(folder: Path, good: dict[str, Path]) -> Path:
    state = state_dict(good["pt"])
    state["logits.weight"] = state["logits.weight"].to(torch.bfloat16)
    return saved_state(folder / "x.pt", state)


hostile("logits.weight: bfloat16")(pt_bfloat16)
CASES["pt_bfloat16_accepted"] = Case(pt_bfloat16, "", accept_bad_values=True, code=0)


@hostile("conv2d_1.bias: int64")
def pt_int64(folder: Path, good: dict[str, Path]) -> Path:
    state = state_dict(good["pt"])
    state["conv2d_1.bias"] = torch.arange(32)
    return saved_state(folder / "x.pt", state)


@hostile("conv2d_1.bias: bool")
def pt_bool(folder: Path, good: dict[str, Path]) -> Path:
    state = state_dict(good["pt"])
    state["conv2d_1.bias"] = torch.ones(32, dtype=torch.bool)
    return saved_state(folder / "x.pt", state)


@hostile("conv2d_1.bias: float16")
def pt_float16(folder: Path, good: dict[str, Path]) -> Path:
    state = state_dict(good["pt"])
    state["conv2d_1.bias"] = torch.ones(32, dtype=torch.float16)
    return saved_state(folder / "x.pt", state)


@hostile("conv2d_1.bias: uint16")
def pt_uint16(folder: Path, good: dict[str, Path]) -> Path:
    """A type torch saves through `_rebuild_tensor_v3`, over a storage of bytes."""
    state = state_dict(good["pt"])
    state["conv2d_1.bias"] = torch.ones(32, dtype=torch.uint16)
    return saved_state(folder / "x.pt", state)


@hostile("conv2d_1.bias: float8_e4m3fn")
def pt_float8(folder: Path, good: dict[str, Path]) -> Path:
    state = state_dict(good["pt"])
    state["conv2d_1.bias"] = torch.ones(32).to(torch.float8_e4m3fn)
    return saved_state(folder / "x.pt", state)


@hostile("cannot be read as float32")
def pt_complex(folder: Path, good: dict[str, Path]) -> Path:
    state = state_dict(good["pt"])
    state["conv2d_1.bias"] = torch.ones(32, dtype=torch.complex64)
    return saved_state(folder / "x.pt", state)


def pt_nan(folder: Path, good: dict[str, Path]) -> Path:
    state = state_dict(good["pt"])
    state["logits.bias"][2] = float("nan")
    return saved_state(folder / "x.pt", state)


hostile("logits/bias: 1 NaN of 10 values")(pt_nan)
CASES["pt_nan_build"] = Case(pt_nan, "logits/bias: 1 NaN", command="build")


@hostile("batch_norm/moving_variance: 16 negative")
def pt_negative_variance(folder: Path, good: dict[str, Path]) -> Path:
    state = state_dict(good["pt"])
    state["batch_norm.running_var"] = -state["batch_norm.running_var"]
    return saved_state(folder / "x.pt", state)


# ----- Keras 3 .weights.h5


def weights_h5_edited(
    folder: Path, good: dict[str, Path], edit: Callable[[h5py.File], None]
) -> Path:
    return h5_edited(good["weights_h5"], folder / "x.weights.h5", edit)


@hostile("cannot read Keras weights")
def h5_not_hdf5(folder: Path, good: dict[str, Path]) -> Path:
    path = folder / "x.weights.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    return path


@hostile("weights for node 'conv2d' (conv2d) do not fit: expected (3, 3, 3, 16)")
def h5_huge_compressed_dataset(folder: Path, good: dict[str, Path]) -> Path:
    """A few KB declaring a (100000, 100000) float32 dataset, 37 GiB once read."""

    def edit(h5: h5py.File) -> None:
        replace_dataset(
            h5,
            "layers/conv2d/vars/0",
            shape=(100_000, 100_000),
            dtype="f4",
            chunks=(1000, 1000),
            compression="gzip",
        )

    path = weights_h5_edited(folder, good, edit)
    assert path.stat().st_size < 64 << 10
    return path


@hostile("'/layers' is not a group")
def h5_layers_a_dataset(folder: Path, good: dict[str, Path]) -> Path:
    def edit(h5: h5py.File) -> None:
        del h5["layers"]
        h5["layers"] = np.zeros(3)

    return weights_h5_edited(folder, good, edit)


@hostile("'/layers/conv2d/vars' is not a group")
def h5_vars_a_dataset(folder: Path, good: dict[str, Path]) -> Path:
    def edit(h5: h5py.File) -> None:
        del h5["layers/conv2d/vars"]
        h5["layers/conv2d/vars"] = np.zeros(3)

    return weights_h5_edited(folder, good, edit)


@hostile("holds entries other than 0, 1, 2, ...: 0, kernel")
def h5_vars_not_numbered(folder: Path, good: dict[str, Path]) -> Path:
    def edit(h5: h5py.File) -> None:
        h5["layers/conv2d/vars/kernel"] = np.zeros(3)

    return weights_h5_edited(folder, good, edit)


@hostile("'/layers/conv2d/vars/0' is a link")
def h5_link_to_another_file(folder: Path, good: dict[str, Path]) -> Path:
    def edit(h5: h5py.File) -> None:
        del h5["layers/conv2d/vars/0"]
        h5["layers/conv2d/vars/0"] = h5py.ExternalLink("/etc/passwd", "/")

    return weights_h5_edited(folder, good, edit)


@hostile("keeps its data in other files")
def h5_data_in_another_file(folder: Path, good: dict[str, Path]) -> Path:
    raw = folder / "raw.bin"
    raw.write_bytes(bytes(1728))

    def edit(h5: h5py.File) -> None:
        replace_dataset(
            h5,
            "layers/conv2d/vars/0",
            shape=(3, 3, 3, 16),
            dtype="f4",
            external=[(str(raw), 0, 1728)],
        )

    return weights_h5_edited(folder, good, edit)


@hostile("chunks larger than itself")
def h5_chunks_larger_than_the_dataset(folder: Path, good: dict[str, Path]) -> Path:
    def edit(h5: h5py.File) -> None:
        replace_dataset(
            h5,
            "layers/dense/vars/1",
            shape=(10,),
            maxshape=(None,),
            chunks=(1 << 28,),
            dtype="f4",
            compression="gzip",
        )

    return weights_h5_edited(folder, good, edit)


@hostile("holds 500 layers; a file for this graph has at most 96")
def h5_too_many_layers(folder: Path, good: dict[str, Path]) -> Path:
    def edit(h5: h5py.File) -> None:
        for i in range(500 - len(h5["layers"])):
            h5.create_group(f"layers/spare_{i}")

    return weights_h5_edited(folder, good, edit)


@hostile("/layers/conv2d_1/vars/1: int32")
def h5_int32(folder: Path, good: dict[str, Path]) -> Path:
    return weights_h5_edited(
        folder,
        good,
        lambda h5: replace_dataset(
            h5, "layers/conv2d_1/vars/1", data=np.arange(32, dtype=np.int32)
        ),
    )


@hostile("/layers/conv2d_1/vars/1: bool")
def h5_bool(folder: Path, good: dict[str, Path]) -> Path:
    return weights_h5_edited(
        folder,
        good,
        lambda h5: replace_dataset(h5, "layers/conv2d_1/vars/1", data=np.ones(32, dtype=bool)),
    )


@hostile("/layers/conv2d_1/vars/1: float16")
def h5_float16(folder: Path, good: dict[str, Path]) -> Path:
    return weights_h5_edited(
        folder,
        good,
        lambda h5: replace_dataset(
            h5, "layers/conv2d_1/vars/1", data=np.ones(32, dtype=np.float16)
        ),
    )


@hostile("cannot be read as float32")
def h5_strings(folder: Path, good: dict[str, Path]) -> Path:
    return weights_h5_edited(
        folder, good, lambda h5: replace_dataset(h5, "layers/conv2d_1/vars/1", data=[b"x"] * 32)
    )


@hostile("conv2d_1/kernel: 1 infinite of 4,608 values")
def h5_infinity(folder: Path, good: dict[str, Path]) -> Path:
    def edit(h5: h5py.File) -> None:
        kernel = h5["layers/conv2d_1/vars/0"][()]
        kernel[0, 0, 0, 0] = -np.inf
        h5["layers/conv2d_1/vars/0"][...] = kernel

    return weights_h5_edited(folder, good, edit)


@hostile("batch_norm/moving_variance: 1 negative")
def h5_negative_variance(folder: Path, good: dict[str, Path]) -> Path:
    def edit(h5: h5py.File) -> None:
        h5["layers/batch_normalization/vars/3"][4] = -0.5

    return weights_h5_edited(folder, good, edit)


# ----- legacy .h5


def legacy_edited(folder: Path, good: dict[str, Path], edit: Callable[[h5py.File], None]) -> Path:
    return h5_edited(good["legacy_h5"], folder / "x.h5", edit)


@hostile("attribute 'layer_names' of '/' is not a list of names")
def lg_layer_names_a_scalar(folder: Path, good: dict[str, Path]) -> Path:
    return legacy_edited(folder, good, lambda h5: set_attribute(h5, "layer_names", b"conv2d"))


@hostile("attribute 'layer_names' of '/' is not a list of names")
def lg_layer_names_numbers(folder: Path, good: dict[str, Path]) -> Path:
    return legacy_edited(folder, good, lambda h5: set_attribute(h5, "layer_names", np.arange(3)))


@hostile("attribute 'weight_names' of '/conv2d' is not a list of names")
def lg_weight_names_a_scalar(folder: Path, good: dict[str, Path]) -> Path:
    return legacy_edited(folder, good, lambda h5: set_attribute(h5["conv2d"], "weight_names", b"k"))


@hostile("lists 10,000 names; at most 96 fit this graph")
def lg_too_many_layer_names(folder: Path, good: dict[str, Path]) -> Path:
    return legacy_edited(
        folder, good, lambda h5: set_attribute(h5, "layer_names", np.array([b"a"] * 10_000))
    )


@hostile("'/conv2d' is not a group")
def lg_layer_a_dataset(folder: Path, good: dict[str, Path]) -> Path:
    def edit(h5: h5py.File) -> None:
        del h5["conv2d"]
        h5["conv2d"] = np.zeros(3)

    return legacy_edited(folder, good, edit)


@hostile("'/batch_norm/batch_norm' is a link")
def lg_weights_behind_a_link(folder: Path, good: dict[str, Path]) -> Path:
    def edit(h5: h5py.File) -> None:
        h5.move("batch_norm/batch_norm", "elsewhere")
        h5["batch_norm/batch_norm"] = h5py.SoftLink("/elsewhere")

    return legacy_edited(folder, good, edit)


@hostile("the HDF5 global heap at byte")
def lg_global_heap_that_never_ends(folder: Path, good: dict[str, Path]) -> Path:
    """The names' heap with its first object made an empty free space: the HDF5 library's
    walk of the heap would stay there for ever (found by tests/test_fuzz_weights.py)."""
    data = bytearray(good["legacy_h5"].read_bytes())
    heap = data.index(b"GCOL\x01")
    struct.pack_into("<HHLQ", data, heap + 16, 0, 0, 0, 0)
    path = folder / "x.h5"
    path.write_bytes(bytes(data))
    return path


@hostile("batch_norm/moving_variance: 16 negative")
def lg_negative_variance(folder: Path, good: dict[str, Path]) -> Path:
    def edit(h5: h5py.File) -> None:
        data = h5["batch_norm/batch_norm/moving_variance:0"]
        data[...] = -np.abs(data[()]) - 1

    return legacy_edited(folder, good, edit)


# ----- .keras archives


def tiny_h5(good: dict[str, Path]) -> bytes:
    with zipfile.ZipFile(good["keras"]) as archive:
        return archive.read("model.weights.h5")


def tiny_config(good: dict[str, Path]) -> dict[str, Any]:
    with zipfile.ZipFile(good["keras"]) as archive:
        return json.loads(archive.read("config.json"))


@hostile("not a zip archive")
def ks_not_a_zip(folder: Path, good: dict[str, Path]) -> Path:
    path = folder / "x.keras"
    path.write_bytes(b"not a zip at all")
    return path


def deflated_zeros(size: int) -> bytes:
    """A raw deflate stream of `size` zero bytes (a multiple of 16 MiB), made in a fraction of
    a second: one block compressed after a full flush compresses alike every time."""
    block = 16 << 20
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = compressor.compress(bytes(block)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return chunk * (size // block) + compressor.flush()


def zip_with_deflated(path: Path, stored: dict[str, bytes], name: str, size: int) -> Path:
    """A zip of `stored` entries and a deflated entry `name` of `size` zeros (its CRC is left
    0: a reader that trusts nothing never reads that far)."""
    entries = [(n, 0, data, len(data), zlib.crc32(data)) for n, data in stored.items()]
    entries.append((name, zlib.DEFLATED, deflated_zeros(size), size, 0))
    body, directory = b"", b""
    for entry_name, method, data, full_size, crc in entries:
        encoded = entry_name.encode()
        sizes = (crc, len(data), full_size, len(encoded))
        directory += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 33, *sizes, 0, 0, 0, 0, 0, len(body)
        )
        directory += encoded
        body += (
            struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 33, *sizes, 0)
            + encoded
            + data
        )
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(directory), len(body), 0
    )
    path.write_bytes(body + directory + end)
    return path


@hostile("'model.weights.h5' (the weights) expands to 1,610,612,736 bytes")
def ks_weights_bomb(folder: Path, good: dict[str, Path]) -> Path:
    """A 1.6 GB model.weights.h5 in a 1.5 MB archive."""
    config = json.dumps(tiny_config(good)).encode()
    path = zip_with_deflated(
        folder / "bomb.keras", {"config.json": config}, "model.weights.h5", 96 << 24
    )
    assert path.stat().st_size < 2 << 20
    return path


@hostile("cannot read 'model.weights.h5'")
def ks_weights_larger_than_declared(folder: Path, good: dict[str, Path]) -> Path:
    """An archive whose headers understate what its weights entry inflates to."""
    path = keras_archive(
        folder / "x.keras",
        json.dumps(tiny_config(good)).encode(),
        tiny_h5(good) + bytes(32 << 20),
        compression=zipfile.ZIP_DEFLATED,
    )
    return understated_sizes(path, "model.weights.h5", 100_000)


@hostile("config.json is not a mapping (a JSON object)")
def ks_config_a_list(folder: Path, good: dict[str, Path]) -> Path:
    return keras_archive(folder / "x.keras", b"[]", tiny_h5(good))


@hostile("config.json: 'config.layers' is missing or not a list")
def ks_layers_a_mapping(folder: Path, good: dict[str, Path]) -> Path:
    config = json.dumps({"config": {"layers": {"a": 1}}}).encode()
    return keras_archive(folder / "x.keras", config, tiny_h5(good))


@hostile("config.json: 'config.layers[2]' is not a mapping")
def ks_layer_not_a_mapping(folder: Path, good: dict[str, Path]) -> Path:
    config = tiny_config(good)
    config["config"]["layers"][2] = "conv2d"
    return keras_archive(folder / "x.keras", json.dumps(config).encode(), tiny_h5(good))


@hostile("config.json: 'config.layers[1].config.name' is missing or not a string")
def ks_layer_without_a_name(folder: Path, good: dict[str, Path]) -> Path:
    config = tiny_config(good)
    del config["config"]["layers"][1]["config"]["name"]
    return keras_archive(folder / "x.keras", json.dumps(config).encode(), tiny_h5(good))


@hostile("config.json is not valid JSON")
def ks_config_nested_deeply(folder: Path, good: dict[str, Path]) -> Path:
    return keras_archive(folder / "x.keras", b"[" * 200_000 + b"]" * 200_000, tiny_h5(good))


@hostile("'config.json' (the model's config) expands to")
def ks_config_bomb(folder: Path, good: dict[str, Path]) -> Path:
    return keras_archive(
        folder / "x.keras", b" " * (16 << 20), tiny_h5(good), compression=zipfile.ZIP_DEFLATED
    )


@hostile("the archive has no 'model.weights.h5'")
def ks_no_weights(folder: Path, good: dict[str, Path]) -> Path:
    return keras_archive(folder / "x.keras", json.dumps(tiny_config(good)).encode(), None)


@hostile("entries in")
def ks_many_entries(folder: Path, good: dict[str, Path]) -> Path:
    config = json.dumps(tiny_config(good)).encode()
    return keras_archive(folder / "x.keras", config, tiny_h5(good), extra=1000)


@hostile("conv2d/kernel: 432 NaN of 432 values")
def ks_nan(folder: Path, good: dict[str, Path]) -> Path:
    analysed = tiny()
    weights = random_weights(analysed, seed=2)
    weights["conv2d/kernel"][...] = np.nan
    return write_keras(folder / "x.keras", analysed, weights)


# ---------------------------------------------------------------------------------------------
# Running every case in one measured subprocess

RUNNER = r"""
import contextlib, io, json, resource, sys, traceback, warnings

import h5py, numpy, safetensors, torch  # the frameworks: importing them is not a case's cost
import xgraph.cli, xgraph.weights.formats, xgraph_keras.files, xgraph_torch.files

def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

def data_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024

cases = json.load(sys.stdin)
budget, cpu_ceiling = int(sys.argv[1]), float(sys.argv[2])
_, hard = resource.getrlimit(resource.RLIMIT_DATA)
resource.setrlimit(resource.RLIMIT_DATA, (data_bytes() + budget, hard))
_, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
warnings.simplefilter("always")  # every case shows every warning, not only the first
for case in cases:
    err, out = io.StringIO(), io.StringIO()
    start = cpu_seconds()
    # Stops a case that never ends (the runner dies, the batch fixture names the cases done);
    # one that ends above the ceiling fails its own test.
    resource.setrlimit(resource.RLIMIT_CPU, (int(start + 2 * cpu_ceiling) + 1, cpu_hard))
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = xgraph.cli.main(case["argv"])
        except SystemExit as exc:
            code = exc.code
        except BaseException:
            code = "exception"
            err.write(traceback.format_exc())
    print(json.dumps({"id": case["id"], "code": code, "err": err.getvalue(),
                      "cpu": cpu_seconds() - start}), flush=True)
growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
print(json.dumps({"peak_rss_growth": growth}))
"""


@dataclass(frozen=True)
class Outcome:
    code: int | str
    err: str
    cpu: float
    file: Path
    output_folder: Path


def argv_for(case: Case, file: Path, out: Path) -> list[str]:
    accept = ["--accept-bad-values"] if case.accept_bad_values else []
    if case.command == "build":
        return [
            "build",
            str(TINY),
            "--backend",
            "torch",
            "-o",
            str(out / "m.pt2"),
            "--weights",
            str(file),
            *accept,
        ]
    if case.command == "parity":
        return ["parity", str(TINY), "--numeric", "--weights", str(file), *accept]
    return ["weights", str(TINY), "--from", str(file), "-o", str(out / "w.safetensors"), *accept]


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Outcome], int]]:
    """Every case's outcome, and the growth of the peak resident size over the batch."""
    root = tmp_path_factory.mktemp("hostile")
    analysed = tiny()
    good = write_all_formats(root / "good", analysed, random_weights(analysed, seed=1))
    files, folders, requests = {}, {}, []
    for name, case in CASES.items():
        folder = root / name
        folder.mkdir()
        files[name] = case.make(folder, good)
        folders[name] = root / f"{name}.out"
        folders[name].mkdir()
        requests.append({"id": name, "argv": argv_for(case, files[name], folders[name])})
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(MEMORY_BUDGET), str(CPU_CEILING_S)],
        input=json.dumps(requests),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        check=False,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert result.returncode == 0 and lines and "peak_rss_growth" in lines[-1], (
        f"the runner stopped (status {result.returncode}) after "
        f"{[line.get('id') for line in lines]}:\n{result.stderr[-3000:]}"
    )
    outcomes = {
        line["id"]: Outcome(
            line["code"], line["err"], line["cpu"], files[line["id"]], folders[line["id"]]
        )
        for line in lines[:-1]
    }
    yield outcomes, lines[-1]["peak_rss_growth"]


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.code == 2])
def test_hostile_file_is_refused_cleanly(batch: tuple[dict[str, Outcome], int], name: str) -> None:
    outcome = batch[0][name]
    assert outcome.code == 2, outcome.err
    assert outcome.err.startswith(f"{outcome.file}: error: "), outcome.err
    assert CASES[name].reported in outcome.err
    assert "Traceback" not in outcome.err
    assert "Warning" not in outcome.err  # no raw warning of torch or h5py
    assert "weights_only" not in outcome.err  # torch's advice to run the file's code
    assert list(outcome.output_folder.iterdir()) == []  # nothing written, not even a part
    print(f"{name}: {outcome.cpu:.3f} s of CPU")
    assert outcome.cpu < CPU_CEILING_S, f"{outcome.cpu:.2f} s of CPU, over {CPU_CEILING_S:g} s"


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.code == 0])
def test_bad_values_load_when_accepted(batch: tuple[dict[str, Outcome], int], name: str) -> None:
    outcome = batch[0][name]
    assert outcome.code == 0, outcome.err
    assert [p.name for p in outcome.output_folder.iterdir()] == ["w.safetensors"]


def test_the_whole_batch_stays_within_the_memory_budget(
    batch: tuple[dict[str, Outcome], int],
) -> None:
    outcomes, growth = batch
    assert outcomes.keys() == CASES.keys()
    slowest = max(outcomes, key=lambda name: outcomes[name].cpu)
    print(f"slowest case: {slowest}, {outcomes[slowest].cpu:.3f} s of CPU")
    assert growth < MEMORY_BUDGET
