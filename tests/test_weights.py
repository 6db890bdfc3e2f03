"""Canonical weights and their files: completeness checks, safetensors metadata, bit-exact
round trips between torch, canonical and Keras files, refusals of wrong files, and the
emulation of Keras's layer order that reading Keras 3 `.weights.h5` files relies on."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from xgraph.api import load, loads
from xgraph.backend import load_backend
from xgraph.errors import SpecError
from xgraph.ir.analysis import AnalysedGraph
from xgraph.weights.canonical import FORMAT, check_complete
from xgraph.weights.formats import read_weights, write_weights
from xgraph.weights.initial import Weights, random_weights
from xgraph_keras.layer_order import keras_layer_order

if TYPE_CHECKING:
    from conftest import CliRunner

XCEPTION = Path(__file__).resolve().parent.parent / "specs" / "xception.yaml"
SMALL_INPUT = "input_shape=[71, 71, 3]"

SMALL = """
xgraph: 1
name: small
inputs:
  - {name: image, shape: [8, 8, 3]}
nodes:
  - {name: conv, op: conv2d, filters: 4, kernel_size: 3}
  - {name: bn, op: batch_norm}
  - {name: pooled, op: global_avg_pool}
  - {name: logits, op: dense, units: 2}
"""

# Two branches meet in a concat; one has a convolution padded by explicit amounts, which Keras
# builds as a ZeroPadding2D and a 'valid' conv, one layer more: that extra depth is what puts
# BatchNorm `a_bn` before BatchNorm `b` in model.layers, and so in a `.weights.h5`.
BRANCHED = """
xgraph: 1
name: branched
inputs:
  - {name: image, shape: [16, 16, 3]}
nodes:
  - {name: a, op: conv2d, filters: 4, kernel_size: 3, padding: same}
  - {name: a_bn, op: batch_norm}
  - {name: padded, op: separable_conv2d, filters: 6, kernel_size: 3,
     padding: [[1, 0], [0, 1]]}
  - {name: b, op: batch_norm, inputs: image}
  - {name: c, op: conv2d, filters: 3, kernel_size: 2}
  - {name: joined, op: concat, inputs: [c, padded]}
  - {name: pooled, op: global_avg_pool}
  - {name: logits, op: dense, units: 3}
"""


@pytest.fixture(scope="module")
def small() -> AnalysedGraph:
    return loads(SMALL)


@pytest.fixture(scope="module")
def xception71() -> AnalysedGraph:
    """Xception at its smallest input: weights do not depend on the input size."""
    return load(XCEPTION, [SMALL_INPUT])


@pytest.fixture(autouse=True)
def _no_copies_left(tmp_path: Path) -> Iterator[None]:
    """Xception's weights take 90 MB a file: remove each test's copies when it is done."""
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


def keras_backend() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return load_backend("keras")


def assert_same_weights(got: Weights, expected: Weights) -> None:
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key].dtype == np.float32, key
        assert np.array_equal(got[key], value), key


# ---------------------------------------------------------------------------------------------
# check_complete


def test_complete_weights_come_back_as_float32(small: AnalysedGraph) -> None:
    weights = {key: value.astype(np.float64) for key, value in random_weights(small).items()}
    checked = check_complete(small, weights, "test")
    assert list(checked) == [
        *("conv/kernel", "conv/bias"),
        *("bn/gamma", "bn/beta", "bn/moving_mean", "bn/moving_variance"),
        *("logits/kernel", "logits/bias"),
    ]
    assert_same_weights(checked, {k: v.astype(np.float32) for k, v in weights.items()})


def complete_check_error(analysed: AnalysedGraph, weights: Weights) -> SpecError:
    with pytest.raises(SpecError) as caught:
        check_complete(analysed, weights, "my.safetensors")
    return caught.value


def test_missing_tensor_is_reported(small: AnalysedGraph) -> None:
    weights = random_weights(small)
    del weights["bn/gamma"]
    error = complete_check_error(small, weights)
    assert error.message == (
        "the weights do not fit 'small': 1 missing, 0 not in the graph, 0 of the wrong shape"
    )
    assert error.format().startswith("my.safetensors: error: the weights do not fit 'small'")
    assert error.notes == ("missing: bn/gamma (4,)",)


def test_extra_tensor_is_reported(small: AnalysedGraph) -> None:
    weights = {**random_weights(small), "head/kernel": np.zeros((4, 2), np.float32)}
    error = complete_check_error(small, weights)
    assert "0 missing, 1 not in the graph, 0 of the wrong shape" in error.message
    assert error.notes == ("not in the graph: head/kernel (4, 2)",)


def test_wrong_shape_is_reported(small: AnalysedGraph) -> None:
    weights = random_weights(small)
    weights["conv/kernel"] = weights["conv/kernel"].transpose(3, 2, 0, 1)  # torch's layout
    error = complete_check_error(small, weights)
    assert "0 missing, 0 not in the graph, 1 of the wrong shape" in error.message
    assert error.notes == ("wrong shape: conv/kernel: expected (3, 3, 3, 4), found (4, 3, 3, 3)",)


def test_every_kind_of_difference_is_reported_at_once(small: AnalysedGraph) -> None:
    weights = random_weights(small)
    del weights["logits/bias"]
    weights["logits/kernel"] = np.zeros((4, 3), np.float32)
    weights["stray"] = np.zeros(1, np.float32)
    error = complete_check_error(small, weights)
    assert "1 missing, 1 not in the graph, 1 of the wrong shape" in error.message
    assert error.notes == (
        "missing: logits/bias (2,)",
        "not in the graph: stray (1,)",
        "wrong shape: logits/kernel: expected (4, 2), found (4, 3)",
    )
    assert error.hint and "--set" in error.hint


# ---------------------------------------------------------------------------------------------
# The canonical file


def test_safetensors_file_says_it_is_canonical(small: AnalysedGraph, tmp_path: Path) -> None:
    path = tmp_path / "small.safetensors"
    weights = random_weights(small, seed=3)
    write_weights(path, small, weights)
    with safe_open(str(path), framework="np") as file:
        assert file.metadata() == {"format": FORMAT, "version": "1", "graph": "small"}
    assert FORMAT == "xgraph-canonical"
    assert_same_weights(read_weights(path, small), weights)


# ---------------------------------------------------------------------------------------------
# Round trip: torch -> canonical -> keras -> canonical -> torch


def torch_state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_round_trip_through_keras_is_bit_exact(
    run_cli: CliRunner, tmp_path: Path, xception71: AnalysedGraph
) -> None:
    weights = random_weights(xception71, seed=4)
    names = ("start.pt", "a.safetensors", "b.weights.h5", "c.safetensors", "end.pt")
    chain = [tmp_path / name for name in names]
    write_weights(chain[0], xception71, weights)
    for source, target in itertools.pairwise(chain):
        result = run_cli("weights", XCEPTION, "--from", source, "-o", target, "--set", SMALL_INPUT)
        assert result.code == 0, result.err
        assert f"wrote {target}: {len(weights)} tensors" in result.out

    first, second = load_file(chain[1]), load_file(chain[3])
    assert_same_weights(first, weights)
    assert_same_weights(second, first)
    before, after = torch_state(chain[0]), torch_state(chain[-1])
    assert before.keys() == after.keys()
    for key, tensor in before.items():
        assert torch.equal(after[key], tensor), key


def test_weights_h5_is_keras_own_layout(tmp_path: Path, xception71: AnalysedGraph) -> None:
    """keras.applications.Xception itself loads what xgraph writes, every tensor in place."""
    weights = random_weights(xception71, seed=5)
    path = tmp_path / "x.weights.h5"
    write_weights(path, xception71, weights)
    keras_backend()  # Keras on TensorFlow
    import keras

    model = keras.applications.Xception(weights=None, input_shape=(71, 71, 3))
    model.load_weights(path)
    for name in ("block1_conv1", "block2_sepconv1", "block13_sepconv2_bn", "predictions"):
        params = [p.name for p in xception71.counts[name].params]
        for param, value in zip(params, model.get_layer(name).get_weights(), strict=True):
            assert np.array_equal(value, weights[f"{name}/{param}"]), f"{name}/{param}"


@pytest.mark.parametrize("suffix", [".weights.h5", ".keras"])
def test_keras_files_of_a_padded_branched_graph_round_trip(tmp_path: Path, suffix: str) -> None:
    """Positional Keras 3 keys are placed by the emulated layer order, ZeroPadding2D and all."""
    analysed = loads(BRANCHED)
    weights = random_weights(analysed, seed=6)
    path = tmp_path / f"branched{suffix}"
    backend = keras_backend()
    if suffix == ".keras":
        backend.save(backend.build(analysed, weights), analysed, path)
    else:
        write_weights(path, analysed, weights)
    assert_same_weights(read_weights(path, analysed), weights)


# ---------------------------------------------------------------------------------------------
# Wrong files: exit status 2, a report naming what is wrong, nothing written


@pytest.fixture(scope="module")
def good_files(
    tmp_path_factory: pytest.TempPathFactory, xception71: AnalysedGraph
) -> Iterator[dict[str, Path]]:
    """Xception's weights at 71x71 as a canonical file and as a torch state dict."""
    folder = tmp_path_factory.mktemp("good")
    weights = random_weights(xception71, seed=7)
    files = {"safetensors": folder / "x.safetensors", "pt": folder / "x.pt"}
    for path in files.values():
        write_weights(path, xception71, weights)
    yield files
    shutil.rmtree(folder)


def rejected(run_cli: CliRunner, tmp_path: Path, bad: Path) -> str:
    """What `xgraph build --weights BAD` reports; it must exit 2 and write nothing."""
    out = tmp_path / "out.pt2"
    result = run_cli(
        "build", XCEPTION, "--backend", "torch", "-o", out, "--weights", bad, "--set", SMALL_INPUT
    )
    assert result.code == 2, result.err
    assert result.err.startswith(f"{bad}: error: ")
    assert not out.exists()
    return result.err


@pytest.mark.parametrize(
    ("fmt", "reported"),
    [("safetensors", "truncated, or damaged: tensor "), ("pt", "or a truncated one")],
)
def test_truncated_file(
    good_files: dict[str, Path], run_cli: CliRunner, tmp_path: Path, fmt: str, reported: str
) -> None:
    data = good_files[fmt].read_bytes()
    bad = tmp_path / good_files[fmt].name
    bad.write_bytes(data[: len(data) // 2])
    assert reported in rejected(run_cli, tmp_path, bad)


def edited_safetensors(
    good_files: dict[str, Path], tmp_path: Path, edit: Callable[[Weights], None]
) -> Path:
    tensors = load_file(good_files["safetensors"])
    edit(tensors)
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, bad)
    return bad


def test_safetensors_missing_a_tensor(
    good_files: dict[str, Path], run_cli: CliRunner, tmp_path: Path
) -> None:
    def drop(tensors: Weights) -> None:
        del tensors["block5_sepconv2/pointwise_kernel"]

    err = rejected(run_cli, tmp_path, edited_safetensors(good_files, tmp_path, drop))
    assert "1 missing, 0 not in the graph, 0 of the wrong shape" in err
    assert "missing: block5_sepconv2/pointwise_kernel (1, 1, 728, 728)" in err


def test_safetensors_with_a_wrong_shape(
    good_files: dict[str, Path], run_cli: CliRunner, tmp_path: Path
) -> None:
    def narrow(tensors: Weights) -> None:
        tensors["block5_sepconv2/pointwise_kernel"] = np.zeros((1, 1, 728, 700), np.float32)

    err = rejected(run_cli, tmp_path, edited_safetensors(good_files, tmp_path, narrow))
    assert (
        "wrong shape: block5_sepconv2/pointwise_kernel: expected (1, 1, 728, 728), "
        "found (1, 1, 728, 700)"
    ) in err


def edited_state_dict(good_files: dict[str, Path], tmp_path: Path, key: str, value: Any) -> Path:
    state = torch_state(good_files["pt"])
    state[key] = value
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    return bad


def test_state_dict_with_an_extra_key(
    good_files: dict[str, Path], run_cli: CliRunner, tmp_path: Path
) -> None:
    bad = edited_state_dict(good_files, tmp_path, "head.weight", torch.zeros(10, 2048))
    err = rejected(run_cli, tmp_path, bad)
    assert "1 tensor(s) of the state dict have no place in 'xception'" in err
    assert "unexpected: head.weight" in err


def test_state_dict_missing_a_key_names_the_torch_key(
    good_files: dict[str, Path], run_cli: CliRunner, tmp_path: Path
) -> None:
    state = torch_state(good_files["pt"])
    del state["block4.sepconv1_bn.running_var"]  # written as the generated module's keys
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    err = rejected(run_cli, tmp_path, bad)
    assert "1 tensor(s) of 'xception' are not in the state dict" in err
    assert (
        "missing: block4.sepconv1_bn.running_var (canonical block4_sepconv1_bn/moving_variance)"
    ) in err


def test_state_dict_with_a_wrong_shape(
    good_files: dict[str, Path], run_cli: CliRunner, tmp_path: Path
) -> None:
    bad = edited_state_dict(good_files, tmp_path, "block1_conv1.weight", torch.zeros(16, 3, 3, 3))
    err = rejected(run_cli, tmp_path, bad)
    assert "'block1_conv1.weight' has shape (16, 3, 3, 3)" in err
    assert "node 'block1_conv1' needs (32, 3, 3, 3)" in err


def test_unknown_extension(run_cli: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"\x08\x07onnx")
    assert "unknown weights format '.onnx'" in rejected(run_cli, tmp_path, bad)


def test_file_that_does_not_exist(run_cli: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "nowhere.safetensors"
    assert "no such weights file" in rejected(run_cli, tmp_path, bad)


def test_conversion_of_a_wrong_file_writes_nothing(
    good_files: dict[str, Path], run_cli: CliRunner, tmp_path: Path
) -> None:
    bad = edited_state_dict(good_files, tmp_path, "head.weight", torch.zeros(3))
    out = tmp_path / "out.safetensors"
    result = run_cli("weights", XCEPTION, "--from", bad, "-o", out, "--set", SMALL_INPUT)
    assert result.code == 2
    assert "unexpected: head.weight" in result.err
    assert not out.exists()


def test_conversion_to_an_unknown_extension(
    good_files: dict[str, Path], run_cli: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "out.onnx"
    result = run_cli(
        "weights", XCEPTION, "--from", good_files["pt"], "-o", out, "--set", SMALL_INPUT
    )
    assert result.code == 2
    assert "cannot write 'out.onnx': use one of .safetensors, .weights.h5, .pt, .pth" in result.err
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# Keras's layer order, emulated without Keras


@pytest.mark.parametrize(
    "overrides",
    [[], ["include_top=false", "pooling=max"]],
    ids=["default", "no_top_max_pool"],
)
def test_layer_order_of_xception_is_keras_own(overrides: list[str]) -> None:
    analysed = load(XCEPTION, overrides)
    model = keras_backend().build(analysed)
    assert keras_layer_order(analysed) == [layer.name for layer in model.layers]


def test_layer_order_with_explicit_padding_branch_and_concat() -> None:
    """The ZeroPadding2D layer Keras adds is not a node; every node keeps Keras's place."""
    analysed = loads(BRANCHED)
    keras_names = [layer.name for layer in keras_backend().build(analysed).layers]
    assert "padded_pad" in keras_names
    order = keras_layer_order(analysed)
    assert order == [name for name in keras_names if name != "padded_pad"]
    assert order.index("a_bn") < order.index("b")


def test_a_registered_weight_format_that_is_not_one_is_refused(monkeypatch) -> None:
    from importlib.metadata import EntryPoint

    import xgraph.plugins
    from xgraph.weights.formats import weight_file_formats

    entry = EntryPoint("fake", "fake_files:FILES", "xgraph.weight_files")
    monkeypatch.setattr(xgraph.plugins, "loaded", lambda group: [(entry, object())])
    uncached = weight_file_formats.__wrapped__  # the cache keeps the real formats
    with pytest.raises(SpecError, match=r"weight files 'fake_files:FILES' .* got object"):
        uncached()


# ---------------------------------------------------------------------------------------------
# Torch state dicts: the generated module's keys written, both layouts read


def test_a_written_state_dict_loads_strictly_into_the_generated_module(
    run_cli: CliRunner, tmp_path: Path, xception71: AnalysedGraph
) -> None:
    """`xgraph weights -o model.pt` keys the file as the generated module (block instances
    nest: `block5_12.0.sepconv1...`), which loads it strictly and computes the build's
    numbers; xgraph reads it back, and reads the build's own flat state dict alike."""
    from conftest import import_source

    from xgraph.api import codegen
    from xgraph.codegen import class_name

    weights = random_weights(xception71, seed=8)
    canonical = tmp_path / "w.safetensors"
    write_weights(canonical, xception71, weights)
    written = tmp_path / "w.pt"
    result = run_cli("weights", XCEPTION, "--from", canonical, "-o", written, "--set", SMALL_INPUT)
    assert result.code == 0, result.err
    state = torch_state(written)
    assert "block5_12.0.sepconv1.depthwise.weight" in state  # the middle flow's first block
    assert "block5_sepconv1.depthwise.weight" not in state

    module = import_source(codegen(xception71, "torch"), tmp_path, "xception_weights")
    generated = getattr(module, class_name(xception71.name))().eval()
    generated.load_state_dict(state)  # strict
    built = load_backend("torch").build(xception71, weights).eval()
    image = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 3, 71, 71)).astype("f4"))
    with torch.no_grad():
        assert torch.allclose(generated(image), built(image), rtol=1e-5, atol=1e-6)

    assert_same_weights(read_weights(written, xception71), weights)
    flat = tmp_path / "flat.pt"
    torch.save(built.state_dict(), flat)
    assert "block5_sepconv1.depthwise.weight" in torch_state(flat)
    assert_same_weights(read_weights(flat, xception71), weights)
