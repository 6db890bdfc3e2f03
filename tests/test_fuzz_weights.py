"""Fuzzing the weight file readers: mutations of small valid files in every format end in
weights that fit the graph or in a clean SpecError (exit status 2), nothing else, within
500 MB of memory and a CPU ceiling each (tests/fuzzing.py).

The files hold examples/specs/tiny_cnn.yaml's weights: canonical `.safetensors`, a torch
`.pt`, Keras 3 `.weights.h5`, legacy `.h5` and `.keras`. Mutations: bytes (bit flips,
overwrites with extreme integers, truncations, insertions, deletions, repeats), and each
format's structure (safetensors headers; state dict keys, dtypes, shapes and records; HDF5
datasets, groups, links and attributes; `.keras` configs). Examples are derandomised and
never stored, so every run tries the same 150 per test; XGRAPH_FUZZ_EXAMPLES sets the
number per test for a longer run, then random, as for tests/test_fuzz_specs.py
(`XGRAPH_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_weights.py`). Memory is bounded by
lowering RLIMIT_DATA's soft limit to the process's data size plus 500 MB while a test runs
(restored after), so an allocation beyond the budget fails inside the example that makes it.
"""

from __future__ import annotations

import faulthandler
import io
import json
import struct
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
from fuzzing import (  # noqa: F401 (memory_budget, slowest_example: autouse)
    cpu_ceiling,
    fuzz_settings,
    memory_budget,
    slowest_example,
)
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from test_hostile_weights import keras_archive, keras_config, tiny, write_all_formats

from xgraph.errors import SpecError
from xgraph.ir.analysis import AnalysedGraph
from xgraph.weights.canonical import expected_shapes
from xgraph.weights.formats import read_weights
from xgraph.weights.initial import random_weights

HANG_S = 120

FUZZ = fuzz_settings(150, [HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

SUFFIXES = {
    "safetensors": ".safetensors",
    "pt": ".pt",
    "weights_h5": ".weights.h5",
    "legacy_h5": ".h5",
    "keras": ".keras",
}


class Fixture:
    """The graph, a valid file of every format, and a folder for the mutated copies."""

    def __init__(self, folder: Path) -> None:
        self.analysed = tiny()
        self.good = write_all_formats(
            folder / "good", self.analysed, random_weights(self.analysed, 1)
        )
        self.folder = folder

    def path(self, fmt: str) -> Path:
        return self.folder / f"mutated{SUFFIXES[fmt]}"


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    return Fixture(tmp_path_factory.mktemp("fuzz"))


def read_clean(path: Path, analysed: AnalysedGraph) -> None:
    """Weights that fit the graph, or a SpecError; anything else fails the example. A read
    that never returns (a loop inside a C library cannot be interrupted) ends the process
    with every thread's traceback after HANG_S, rather than blocking the run."""
    faulthandler.dump_traceback_later(HANG_S, exit=True)
    try:
        with cpu_ceiling(path.name):
            try:
                weights = read_weights(path, analysed)
            except SpecError as error:
                assert error.format().startswith(f"{path}: error: ")
                weights = None
    finally:
        faulthandler.cancel_dump_traceback_later()
    if weights is not None:
        for key, shape in expected_shapes(analysed).items():
            assert weights[key].shape == shape and weights[key].dtype == np.float32
            assert np.isfinite(weights[key]).all()


# ---------------------------------------------------------------------------------------------
# Bytes

EXTREMES = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 2**31 - 1, 2**31, 2**32 - 1, 2**63, 2**64 - 1]


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with one to four mutations, placed anywhere but mostly near either end, where
    the headers and directories are."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        size = len(out)
        if size == 0:
            break
        at = draw(
            st.one_of(
                st.integers(0, min(size, 2048) - 1),
                st.integers(0, size - 1),
                st.integers(max(size - 2048, 0), size - 1),
            )
        )
        kind = draw(st.sampled_from(["flip", "integer", "truncate", "insert", "delete", "repeat"]))
        if kind == "flip":
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "integer":
            width = draw(st.sampled_from([1, 2, 4, 8]))
            value = draw(st.sampled_from(EXTREMES)) % (1 << (8 * width))
            out[at : at + width] = value.to_bytes(width, "little")
        elif kind == "truncate":
            del out[at:]
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del out[at : at + draw(st.integers(1, 256))]
        else:
            out[at:at] = out[at : at + draw(st.integers(1, 256))]
    return bytes(out)


@pytest.mark.parametrize("fmt", list(SUFFIXES))
@FUZZ
@given(data=st.data())
def test_mutated_bytes(fuzz: Fixture, fmt: str, data: st.DataObject) -> None:
    path = fuzz.path(fmt)
    path.write_bytes(data.draw(mutated_bytes(fuzz.good[fmt].read_bytes())))
    read_clean(path, fuzz.analysed)


# ---------------------------------------------------------------------------------------------
# Structure: values of every kind where a format expects one

JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.sampled_from([-1, 0, 1, 2**31, 2**63, 2**64, -(2**63), 10**30]),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=8),
    ),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def mutate_json(draw: st.DrawFn, tree: Any) -> Any:
    """`tree` with one node replaced, deleted, renamed or duplicated, somewhere inside."""
    if not isinstance(tree, dict | list) or not tree or draw(st.integers(0, 3)) == 0:
        return draw(JSON_VALUES)
    keys = list(tree) if isinstance(tree, dict) else list(range(len(tree)))
    key = draw(st.sampled_from(keys))
    action = draw(st.sampled_from(["descend", "delete", "rename", "duplicate"]))
    copy = dict(tree) if isinstance(tree, dict) else list(tree)
    if action == "descend":
        copy[key] = mutate_json(draw, tree[key])
    elif action == "delete":
        del copy[key]
    elif action == "rename" and isinstance(copy, dict):
        copy[draw(st.text(max_size=12))] = copy.pop(key)
    elif isinstance(copy, dict):
        copy[f"{key}_"] = copy[key]
    else:
        copy.insert(key, copy[key])
    return copy


@st.composite
def safetensors_variant(draw: st.DrawFn, good: bytes) -> bytes:
    (size,) = struct.unpack("<Q", good[:8])
    header = json.loads(good[8 : 8 + size])
    text = json.dumps(mutate_json(draw, header)).encode()
    body = good[8 + size :]
    if draw(st.booleans()):  # data cut or padded to where the new header says it ends
        body = body[: draw(st.integers(0, len(body)))]
    declared = len(text) if draw(st.integers(0, 4)) else draw(st.sampled_from(EXTREMES))
    return struct.pack("<Q", declared) + text + body


@FUZZ
@given(data=st.data())
def test_mutated_safetensors_header(fuzz: Fixture, data: st.DataObject) -> None:
    path = fuzz.path("safetensors")
    path.write_bytes(data.draw(safetensors_variant(fuzz.good["safetensors"].read_bytes())))
    read_clean(path, fuzz.analysed)


TORCH_DTYPES = [
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.int8,
    torch.uint8,
    torch.bool,
    torch.complex64,
    torch.uint16,
    torch.float8_e4m3fn,
]
SHAPES = st.lists(st.integers(0, 20), max_size=4).map(tuple)


@st.composite
def state_dict_variant(draw: st.DrawFn, good: Path, path: Path) -> None:
    """The good state dict with one to three entries changed, saved to `path`, its zip
    records then perhaps compressed, cut or repeated."""
    state: dict[Any, Any] = torch.load(good, weights_only=True)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from([*state, "extra.weight"]))
        action = draw(st.sampled_from(["dtype", "shape", "value", "delete", "special"]))
        value = state.get(key)
        if not isinstance(value, torch.Tensor):
            value = torch.zeros(3)
        if action == "dtype":
            with warnings.catch_warnings():  # complex to real drops the imaginary part
                warnings.simplefilter("ignore")
                state[key] = value.to(draw(st.sampled_from(TORCH_DTYPES)))
        elif action == "shape":
            state[key] = torch.zeros(draw(SHAPES), dtype=value.dtype)
        elif action == "value":
            state[key] = draw(
                st.one_of(
                    st.integers(), st.text(max_size=4), st.just([value]), st.just({"a": value})
                )
            )
        elif action == "delete":
            state.pop(key, None)
        else:
            special = draw(st.sampled_from([float("nan"), float("inf"), -1.0, 1e39]))
            state[key] = torch.full(value.shape, special, dtype=torch.float64)
    tensors = [key for key, value in state.items() if isinstance(value, torch.Tensor)]
    if tensors and draw(st.booleans()):  # a huge shape over a small storage
        key = draw(st.sampled_from(tensors))
        state[key] = state[key].expand(100_000, *state[key].shape)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    original = zipfile.ZipFile(buffer)
    names = original.namelist()
    edited = draw(st.sampled_from([None, *names]))
    how = draw(st.sampled_from(["compress", "cut", "repeat", "drop"]))
    with zipfile.ZipFile(path, "w") as copy:
        for name in names:
            content = original.read(name)
            kind = zipfile.ZIP_STORED
            if name == edited:
                if how == "drop":
                    continue
                if how == "compress":
                    kind = zipfile.ZIP_DEFLATED
                elif how == "cut":
                    content = content[: draw(st.integers(0, len(content)))]
                else:
                    content = content * 2
            copy.writestr(name, content, kind)


@FUZZ
@given(data=st.data())
def test_mutated_state_dict(fuzz: Fixture, data: st.DataObject) -> None:
    path = fuzz.path("pt")
    data.draw(state_dict_variant(fuzz.good["pt"], path))
    read_clean(path, fuzz.analysed)


NAME_CHARACTERS = st.characters(codec="utf-8", exclude_characters="\x00")  # as HDF5 stores
H5_DTYPES = ["f4", "f8", "f2", "i8", "u1", "?", "c8", "S4", h5py.string_dtype()]


def h5_objects(h5: h5py.File) -> list[str]:
    found: list[str] = []
    h5.visit(found.append)
    return found


@st.composite
def h5_edit(draw: st.DrawFn) -> Callable[[h5py.File], None]:
    """One structural edit of an HDF5 file: a dataset's type, shape or storage; a group or
    dataset where the other belongs; links; attributes of the wrong kind; deletions."""
    action = draw(st.sampled_from(["dataset", "swap", "link", "attribute", "delete", "crowd"]))
    dtype = draw(st.sampled_from(H5_DTYPES))
    shape = draw(st.one_of(SHAPES, st.just((100_000, 100_000))))
    pick = draw(st.integers(0, 10**6))
    attribute_value = draw(
        st.one_of(
            st.just(b"conv2d"),
            st.just(np.arange(3)),
            st.just(np.array([], dtype="f8")),
            st.lists(st.binary(max_size=12), max_size=6).map(np.array),
            st.lists(st.text(NAME_CHARACTERS, max_size=12), max_size=6).map(
                lambda names: np.array(names, dtype=h5py.string_dtype())
            ),
        )
    )
    link = draw(st.sampled_from(["soft", "external", "self"]))

    def edit(h5: h5py.File) -> None:
        objects = h5_objects(h5)
        name = objects[pick % len(objects)]
        target = h5[name]
        if action == "dataset":
            del h5[name]
            big = shape == (100_000, 100_000)
            h5.create_dataset(
                name,
                shape=shape,
                dtype=dtype,
                chunks=(1000, 1000) if big else None,
                compression="gzip" if big else None,
            )
        elif action == "swap":
            del h5[name]
            if isinstance(target, h5py.Group):
                h5[name] = np.zeros(3)
            else:
                h5.create_group(name)
        elif action == "link":
            del h5[name]
            h5[name] = {
                "soft": h5py.SoftLink("/"),
                "external": h5py.ExternalLink("/etc/passwd", "/"),
                "self": h5py.SoftLink(f"/{name}"),
            }[link]
        elif action == "attribute":
            owner = target if isinstance(target, h5py.Group) else h5
            owner.attrs[draw_attribute_name(pick)] = attribute_value
        elif action == "delete":
            del h5[name]
        elif isinstance(target, h5py.Group):
            for i in range(200):
                target.create_group(f"crowd_{i}")

    return edit


def draw_attribute_name(pick: int) -> str:
    return ["layer_names", "weight_names"][pick % 2]


def edited_h5_bytes(good: bytes, edit: Callable[[h5py.File], None]) -> bytes:
    buffer = io.BytesIO(good)
    with h5py.File(buffer, "r+") as h5:
        edit(h5)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["weights_h5", "legacy_h5", "keras"])
@FUZZ
@given(data=st.data())
def test_mutated_hdf5_structure(fuzz: Fixture, fmt: str, data: st.DataObject) -> None:
    edit = data.draw(h5_edit())
    path = fuzz.path(fmt)
    if fmt == "keras":
        with zipfile.ZipFile(fuzz.good["keras"]) as archive:
            inner = archive.read("model.weights.h5")
            config = archive.read("config.json")
        keras_archive(path, config, edited_h5_bytes(inner, edit))
    else:
        path.write_bytes(edited_h5_bytes(fuzz.good[fmt].read_bytes(), edit))
    read_clean(path, fuzz.analysed)


@FUZZ
@given(data=st.data())
def test_mutated_keras_config(fuzz: Fixture, data: st.DataObject) -> None:
    with zipfile.ZipFile(fuzz.good["keras"]) as archive:
        inner = archive.read("model.weights.h5")
    config = mutate_json(data.draw, keras_config(fuzz.analysed))
    path = keras_archive(fuzz.path("keras"), json.dumps(config).encode(), inner)
    read_clean(path, fuzz.analysed)
