"""Weights saved by the real keras.applications.Xception, loaded into xgraph's torch build.

One Keras model with random weights and random BatchNorm statistics is saved once per module
in each of Keras's three formats (`.weights.h5`, legacy `.h5`, `.keras`); each file, read
with `read_weights`, must make the torch build compute what Keras computes. Damaged or
foreign files must be refused as a whole, with a report naming what is wrong.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import pytest
import torch
from backend_cases import case_ids

from xgraph.api import load, loads
from xgraph.backend import load_backend
from xgraph.errors import SpecError
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ops.windows import resolve_padding
from xgraph.weights.formats import read_weights
from xgraph_keras.rules.base import class_key

if TYPE_CHECKING:
    from conftest import CliRunner

XCEPTION = Path(__file__).resolve().parent.parent / "specs" / "xception.yaml"
FEATURES = ("block3_pool", "block14_sepconv2_act", "predictions")
POOLS_224 = ("block4_pool", "block13_pool", "predictions")
NO_TOP = ("block14_sepconv2_act",)
LOGITS = "classifier_activation=none"
FORMATS = ("weights_h5", "legacy_h5", "keras")


@pytest.fixture(autouse=True)
def _no_copies_left(tmp_path: Path) -> Iterator[None]:
    """Xception's weights take 90 MB a file: remove each test's copies when it is done."""
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


def import_keras() -> Any:
    """Keras on TensorFlow, chosen before keras is first imported."""
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras


def randomise(model: Any, seed: int) -> None:
    """Perturbed kernels, random biases, and BatchNorm statistics far from (0, 1)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = []
        for variable, value in zip(layer.weights, layer.get_weights(), strict=True):
            if variable.name in ("gamma", "moving_variance"):
                value = rng.uniform(0.5, 1.5, value.shape)
            elif variable.name in ("beta", "moving_mean", "bias"):
                value = rng.normal(0.0, 0.1, value.shape)
            else:
                value = value * rng.uniform(0.5, 1.5, value.shape)
            values.append(value.astype(np.float32))
        layer.set_weights(values)


def copy_weights(source: Any, target: Any) -> None:
    """Layer by layer in model.layers order, for a variant of the same network (another
    input size, no top): automatic layer names differ between models, positions do not."""
    for to, of in zip(target.layers, source.layers, strict=False):
        assert type(to) is type(of)
        to.set_weights(of.get_weights())


def keras_outputs(model: Any, names: Sequence[str], x: np.ndarray) -> list[np.ndarray]:
    features = import_keras().Model(model.input, [model.get_layer(n).output for n in names])
    outputs = features.predict_on_batch(x)
    if not isinstance(outputs, list | tuple):  # Keras unwraps a single output
        outputs = [outputs]
    return [np.asarray(y) for y in outputs]


def save_all(model: Any, folder: Path, stem: str) -> dict[str, Path]:
    files = {
        "weights_h5": folder / f"{stem}.weights.h5",
        "legacy_h5": folder / f"{stem}.h5",
        "keras": folder / f"{stem}.keras",
    }
    model.save_weights(files["weights_h5"])
    model.save(files["legacy_h5"])
    model.save(files["keras"])
    return files


def images(size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (2, size, size, 3)).astype(np.float32)


@dataclass(frozen=True)
class Saved:
    """Keras's files, its inputs and what Keras computed from them at the compared nodes."""

    files: dict[str, Path]
    no_top_files: dict[str, Path]
    x299: np.ndarray
    x224: np.ndarray
    expected: list[np.ndarray]  # FEATURES at 299
    expected_224: list[np.ndarray]  # POOLS_224
    expected_no_top: list[np.ndarray]  # NO_TOP at 299


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Saved]:
    """The Keras model, its variants at 224 and without top, and their files, made once."""
    keras = import_keras()
    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("keras_files")
    xception = keras.applications.Xception
    model = xception(weights=None, classifier_activation=None)
    randomise(model, seed=1)
    at_224 = xception(weights=None, classifier_activation=None, input_shape=(224, 224, 3))
    copy_weights(model, at_224)
    no_top = xception(weights=None, include_top=False)
    copy_weights(model, no_top)
    x299, x224 = images(299, seed=2), images(224, seed=3)
    yield Saved(
        files=save_all(model, folder, "xception"),
        no_top_files=save_all(no_top, folder, "xception_no_top"),
        x299=x299,
        x224=x224,
        expected=keras_outputs(model, FEATURES, x299),
        expected_224=keras_outputs(at_224, POOLS_224, x224),
        expected_no_top=keras_outputs(no_top, NO_TOP, x299),
    )
    shutil.rmtree(folder)


def relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(got - expected).max() / np.abs(expected).max())


def assert_close(
    got: Sequence[np.ndarray], expected: Sequence[np.ndarray], names: Sequence[str]
) -> None:
    for name, a, b in zip(names, got, expected, strict=True):
        assert a.shape == b.shape, name
        assert relative_error(a, b) < 1e-4, f"{name}: relative error {relative_error(a, b):.2e}"


def torch_outputs(
    weights_file: Path, overrides: Sequence[str], outputs: tuple[str, ...], x: np.ndarray
) -> list[np.ndarray]:
    """The torch build of the spec with the file's weights, cut to `outputs`."""
    analysed = load(XCEPTION, overrides)
    weights = read_weights(weights_file, analysed)
    features = analysed.with_outputs(outputs)
    kept = {node.name for node in features.graph.nodes}
    weights = {key: value for key, value in weights.items() if key.split("/")[0] in kept}
    backend = load_backend("torch")
    return backend.predict(backend.build(features, weights), [x])


# ---------------------------------------------------------------------------------------------
# Keras's files reproduce Keras's outputs in the torch build


@pytest.mark.parametrize("fmt", FORMATS)
def test_keras_file_reproduces_keras_at_299(saved: Saved, fmt: str) -> None:
    got = torch_outputs(saved.files[fmt], [LOGITS], FEATURES, saved.x299)
    assert_close(got, saved.expected, FEATURES)


@pytest.mark.parametrize(
    ("size", "asymmetric"),
    [(299, {"block3_pool"}), (224, {"block4_pool", "block13_pool"})],
)
def test_pools_that_pad_asymmetrically(size: int, asymmetric: set[str]) -> None:
    """TensorFlow's 'same' puts the odd pixel below/right; which pools need it depends on size."""
    analysed = load(XCEPTION, [f"input_shape=[{size}, {size}, 3]"])
    found = set()
    for node in analysed.graph.nodes:
        if node.op == "max_pool2d":
            height, width, _ = analysed.shapes[node.inputs[0]]
            attrs = node.attrs
            pads = resolve_padding("same", (height, width), attrs.pool_size, attrs.strides)
            if any(before != after for before, after in pads):
                found.add(node.name)
    assert found == asymmetric


def test_cli_build_from_keras_file_at_224(saved: Saved, run_cli: CliRunner, tmp_path: Path) -> None:
    """`xgraph build --weights`, then the saved .pt2 itself, at the two asymmetric pools."""
    program = tmp_path / "xception_224.pt2"
    weights = saved.files["weights_h5"]
    result = run_cli(
        *("build", XCEPTION, "--backend", "torch", "-o", program, "--weights", weights),
        *("--set", "input_shape=[224, 224, 3]", "--set", LOGITS),
        *("--outputs", ",".join(POOLS_224)),
    )
    assert result.code == 0, result.err
    module = torch.export.load(program).module()
    got = load_backend("torch").predict(module, [saved.x224])
    assert_close(got, saved.expected_224, POOLS_224)


@pytest.mark.parametrize("fmt", FORMATS)
def test_keras_file_without_top(saved: Saved, fmt: str) -> None:
    overrides = ["include_top=false"]
    got = torch_outputs(saved.no_top_files[fmt], overrides, NO_TOP, saved.x299)
    assert_close(got, saved.expected_no_top, NO_TOP)


def test_file_with_top_does_not_fit_spec_without_top(saved: Saved) -> None:
    analysed = load(XCEPTION, ["include_top=false"])
    with pytest.raises(SpecError, match="predictions"):
        read_weights(saved.files["legacy_h5"], analysed)


def test_numeric_parity_with_keras_weights(saved: Saved, run_cli: CliRunner) -> None:
    result = run_cli("parity", XCEPTION, "--numeric", "--weights", saved.files["weights_h5"])
    assert result.code == 0, result.out + result.err
    assert "nodes agree" in result.out


# ---------------------------------------------------------------------------------------------
# Keras 2 files: ':0' suffixes, automatic names numbered from 1

# What Keras 2 called what Keras 3 calls otherwise: InputLayer's automatic names, and the
# kernel of a DepthwiseConv2D.
KERAS2_CLASS = {"input_layer": "input"}
KERAS2_WEIGHT = {("DepthwiseConv2D", "kernel"): "depthwise_kernel"}


def legacy_classes(h5: h5py.File) -> dict[str, str]:
    """Layer name -> class, from the model_config that Keras's `model.save("x.h5")` writes."""
    config = json.loads(h5.attrs["model_config"])
    return {layer["config"]["name"]: layer["class_name"] for layer in config["config"]["layers"]}


def keras2_names(classes: dict[str, str]) -> dict[str, str]:
    """Automatic names (a class in snake case, perhaps numbered) numbered from 1, as a fresh
    Keras 2 session numbered them: `conv2d_7` (the first Conv2D of a model built after
    others) -> `conv2d_1`; InputLayer's `input_layer_3` -> `input_1`."""
    counts: Counter[str] = Counter()
    renamed = {}
    for name, cls in classes.items():
        key = class_key(cls)
        if not re.fullmatch(rf"{key}(_\d+)?", name):
            renamed[name] = name
            continue
        key = KERAS2_CLASS.get(key, key)
        counts[key] += 1
        renamed[name] = f"{key}_{counts[key]}"
    return renamed


def write_keras2_copy(legacy: Path, target: Path, at_root: bool) -> None:
    """A Keras 3 legacy file as Keras 2 wrote it, without model_config: byte-string
    attributes, renamed automatic layers, weights named `<layer>/<weight>:0` by Keras 2's
    names; at the root like keras.applications' ImageNet files, or under `model_weights`."""
    with h5py.File(legacy, "r") as source, h5py.File(target, "w") as out:
        layers = source["model_weights"]
        classes = legacy_classes(source)
        root = out if at_root else out.create_group("model_weights")
        names = keras2_names({str(name): classes[name] for name in layers.attrs["layer_names"]})
        root.attrs["layer_names"] = np.array([new.encode() for new in names.values()])
        for name, new_name in names.items():
            group = root.create_group(new_name)
            weight_names = []
            for weight in layers[name].attrs["weight_names"]:
                short = weight.split("/", 1)[1]
                renamed = f"{new_name}/{KERAS2_WEIGHT.get((classes[name], short), short)}:0"
                group[renamed] = layers[name][weight][()]
                weight_names.append(renamed.encode())
            group.attrs["weight_names"] = np.array(weight_names, dtype="S")


@pytest.mark.parametrize("at_root", [False, True], ids=["model_weights", "root"])
def test_keras2_style_legacy_file_gives_the_same_weights(
    saved: Saved, tmp_path: Path, at_root: bool, xception: AnalysedGraph
) -> None:
    keras2 = tmp_path / "keras2.h5"
    write_keras2_copy(saved.files["legacy_h5"], keras2, at_root)
    with h5py.File(keras2, "r") as h5:
        root = h5 if at_root else h5["model_weights"]
        names = [n.decode() for n in root.attrs["layer_names"]]
        assert {"input_1", "conv2d_1", "conv2d_4", "batch_normalization_4"} <= set(names)
        assert not {"conv2d", "conv2d_5", "batch_normalization", "input_layer"} & set(names)
        assert root["block2_sepconv1"].attrs["weight_names"][0].decode().endswith(":0")

    original = read_weights(saved.files["legacy_h5"], xception)
    converted = read_weights(keras2, xception)
    assert converted.keys() == original.keys()
    for key, value in original.items():
        assert np.array_equal(converted[key], value), key


TWIN_CONVS = """
xgraph: 1
name: twin
inputs:
  - {name: image, shape: [8, 8, 4]}
nodes:
  - {op: conv2d, filters: 4, kernel_size: 3, padding: same}
  - {op: conv2d, filters: 4, kernel_size: 3, padding: same}
"""


def test_automatic_names_are_not_matched_by_their_number(tmp_path: Path) -> None:
    """Keras 2's `conv2d_1` is the graph's first conv, `conv2d`, not its `conv2d_1`."""
    analysed = loads(TWIN_CONVS)
    assert [node.name for node in analysed.graph.nodes] == ["image", "conv2d", "conv2d_1"]
    kernels = {"conv2d_1": 1.0, "conv2d_2": 2.0}  # the first conv's, the second's
    path = tmp_path / "twin.h5"
    with h5py.File(path, "w") as h5:
        h5.attrs["layer_names"] = np.array([b"input_1", *(n.encode() for n in kernels)])
        h5.create_group("input_1").attrs["weight_names"] = np.array([], dtype="S")
        for name, value in kernels.items():
            group = h5.create_group(name)
            group[f"{name}/kernel:0"] = np.full((3, 3, 4, 4), value, np.float32)
            group[f"{name}/bias:0"] = np.zeros(4, np.float32)
            group.attrs["weight_names"] = np.array([f"{name}/kernel:0", f"{name}/bias:0"], "S")
    weights = read_weights(path, analysed)
    assert np.all(weights["conv2d/kernel"] == 1.0)
    assert np.all(weights["conv2d_1/kernel"] == 2.0)


DEPTHWISE = """
xgraph: 1
name: depthwise
inputs:
  - {name: image, shape: [8, 8, 4]}
nodes:
  - {name: conv_dw, op: depthwise_conv2d, kernel_size: 3, padding: same, use_bias: false}
"""


def save_one_layer(path: Path, layer: Any) -> Any:
    """A Keras model of one layer on DEPTHWISE's input, random weights, saved to `path`."""
    keras = import_keras()
    image = keras.Input((8, 8, 4), name="image")
    model = keras.Model(image, layer(image))
    randomise(model, seed=4)
    model.save(path)
    return model


def test_keras3_legacy_depthwise_layer_is_read_by_its_recorded_class(tmp_path: Path) -> None:
    """Keras 3 names a DepthwiseConv2D's kernel `kernel` in a legacy `.h5`, as a Conv2D's:
    the class that the file's model_config records says which layer it is."""
    keras = import_keras()
    path = tmp_path / "depthwise.h5"
    layer = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="conv_dw")
    model = save_one_layer(path, layer)
    with h5py.File(path, "r") as h5:
        assert list(h5["model_weights/conv_dw"].attrs["weight_names"]) == ["conv_dw/kernel"]
    weights = read_weights(path, loads(DEPTHWISE))
    [kernel] = model.get_layer("conv_dw").get_weights()
    assert np.array_equal(weights["conv_dw/depthwise_kernel"], kernel)


def test_layer_of_another_class_names_both_classes(tmp_path: Path) -> None:
    """A Conv2D whose kernel has a depthwise kernel's shape: the report names the classes,
    not two equal shapes."""
    keras = import_keras()
    path = tmp_path / "conv.h5"
    save_one_layer(path, keras.layers.Conv2D(1, 3, padding="same", use_bias=False, name="conv_dw"))
    with pytest.raises(SpecError) as caught:
        read_weights(path, loads(DEPTHWISE))
    assert caught.value.message == (
        "weights for node 'conv_dw' (depthwise_conv2d) do not fit: the node is a Keras "
        "DepthwiseConv2D, the file's layer 'conv_dw' a Conv2D"
    )


# The largest string a legacy file for DEPTHWISE may hold (16 KB a layer, 72 layers, 1 MB).
DEPTHWISE_MOST_CONFIG_BYTES = (16 << 10) * 72 + (1 << 20)


def one_layer_config(class_name: str, sequential_2_0: bool = False) -> str:
    """A model_config listing `conv_dw` as a `class_name`; as Keras 2.0 to 2.2 wrote a
    Sequential's (a list of layers) or as later versions write every model's."""
    layers = [{"class_name": class_name, "config": {"name": "conv_dw"}}]
    if sequential_2_0:
        return json.dumps({"class_name": "Sequential", "config": layers})
    return json.dumps({"class_name": "Functional", "config": {"layers": layers}})


def write_kernel_only_h5(path: Path, model_config: object | None = None) -> Path:
    """DEPTHWISE's layer as Keras 2 files hold a Conv2D's kernel, `conv_dw/kernel:0`, and a
    model_config if one is given (HDF5's newest format, so that a large one fits)."""
    with h5py.File(path, "w", libver="latest") as h5:
        if model_config is not None:
            h5.attrs["model_config"] = model_config
        h5.attrs["layer_names"] = np.array([b"image", b"conv_dw"])
        h5.create_group("image").attrs["weight_names"] = np.array([], dtype="S")
        group = h5.create_group("conv_dw")
        group["conv_dw/kernel:0"] = np.ones((3, 3, 4, 1), np.float32)
        group.attrs["weight_names"] = np.array([b"conv_dw/kernel:0"])
    return path


def test_layer_without_a_recorded_class_names_its_weights(tmp_path: Path) -> None:
    """A legacy file without model_config (keras.applications' ImageNet files): the layer's
    kind comes from its weights' names, and the report says so."""
    path = write_kernel_only_h5(tmp_path / "no_config.h5")
    with pytest.raises(SpecError) as caught:
        read_weights(path, loads(DEPTHWISE))
    assert caught.value.message == (
        "weights for node 'conv_dw' (depthwise_conv2d) do not fit: the file records no class "
        "for its layer 'conv_dw', whose weights (kernel) are a Conv2D's, not a "
        "DepthwiseConv2D's (depthwise_kernel, bias)"
    )


@pytest.mark.parametrize("sequential_2_0", [False, True], ids=["functional", "sequential_2_0"])
def test_recorded_class_places_weights_named_otherwise(
    tmp_path: Path, sequential_2_0: bool
) -> None:
    """Keras 2's model.save writes model_config as a fixed-length byte string: its class
    places a kernel that weight names alone take for a Conv2D's."""
    config = np.bytes_(one_layer_config("DepthwiseConv2D", sequential_2_0).encode())
    path = write_kernel_only_h5(tmp_path / "keras2.h5", config)
    weights = read_weights(path, loads(DEPTHWISE))
    assert np.all(weights["conv_dw/depthwise_kernel"] == 1.0)


def test_fixed_length_model_config_beyond_the_bound_is_not_read(tmp_path: Path) -> None:
    size = DEPTHWISE_MOST_CONFIG_BYTES + 1
    path = write_kernel_only_h5(tmp_path / "long.h5", np.bytes_(b" " * size))
    with pytest.raises(SpecError) as caught:
        read_weights(path, loads(DEPTHWISE))
    assert caught.value.message == (
        f"attribute 'model_config' holds {size:,} bytes; the config of a model for this graph "
        f"takes at most {DEPTHWISE_MOST_CONFIG_BYTES:,}"
    )


@pytest.fixture(scope="module")
def depthwise_h5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DEPTHWISE's layer saved by Keras 3 as a legacy `.h5`, with its model_config."""
    keras = import_keras()
    path = tmp_path_factory.mktemp("depthwise") / "depthwise.h5"
    save_one_layer(
        path, keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="conv_dw")
    )
    return path


@pytest.mark.parametrize(
    ("config", "reported"),
    [
        pytest.param("{not json", "model_config is not valid JSON", id="not_json"),
        pytest.param(
            json.dumps({"class_name": "Functional", "config": {"name": "m"}}),
            "model_config: 'config.layers' is missing or not a list",
            id="no_layers",
        ),
        pytest.param(
            json.dumps({"config": {"layers": [{"class_name": "Conv2D", "config": {}}]}}),
            "model_config: 'config.layers[0].config.name' is missing or not a string",
            id="layer_without_name",
        ),
        pytest.param(
            np.arange(3),
            "attribute 'model_config' is not a string",
            id="numbers",
        ),
        pytest.param(
            one_layer_config("Functional"),
            "layer 'conv_dw' holds weights, but xgraph has no op for Keras's 'Functional' layers",
            id="class_without_op",
        ),
        pytest.param(
            " " * (DEPTHWISE_MOST_CONFIG_BYTES + 1),
            f"holds a value of {DEPTHWISE_MOST_CONFIG_BYTES + 1:,} bytes",
            id="too_long",
        ),
    ],
)
def test_bad_model_config_is_refused(
    depthwise_h5: Path, tmp_path: Path, config: object, reported: str
) -> None:
    """A legacy file's model_config is untrusted: its type, size and structure are checked,
    and a class it names must be one xgraph has an op for."""
    bad = tmp_path / "bad.h5"
    shutil.copy(depthwise_h5, bad)
    with h5py.File(bad, "r+") as h5:
        del h5.attrs["model_config"]
        h5.attrs["model_config"] = config
    with pytest.raises(SpecError) as caught:
        read_weights(bad, loads(DEPTHWISE))
    assert str(caught.value).startswith(f"{bad}: error: ")
    assert reported in caught.value.message


# ---------------------------------------------------------------------------------------------
# Wrong files: exit status 2, a report naming what is wrong, nothing built


def rejected(run_cli: CliRunner, tmp_path: Path, bad: Path, *overrides: str) -> str:
    """What `xgraph build --weights BAD` reports; it must exit 2 and write nothing."""
    out = tmp_path / "out.pt2"
    sets = [arg for value in overrides for arg in ("--set", value)]
    result = run_cli("build", XCEPTION, "--backend", "torch", "-o", out, "--weights", bad, *sets)
    assert result.code == 2, result.err
    assert not out.exists()
    assert result.err.startswith(f"{bad}: error: ")
    return result.err


@pytest.fixture(scope="module")
def foreign_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Real Keras files of other architectures: Xception with 10 classes, a tiny CNN."""
    keras = import_keras()
    folder = tmp_path_factory.mktemp("foreign")
    ten = keras.applications.Xception(weights=None, classes=10, input_shape=(71, 71, 3))
    tiny = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2),
        ]
    )
    files = {"classes_10": folder / "ten.weights.h5", "tiny": folder / "tiny.weights.h5"}
    ten.save_weights(files["classes_10"])
    tiny.save_weights(files["tiny"])
    yield files
    shutil.rmtree(folder)


def test_other_class_count_names_the_classifier(
    foreign_files: dict[str, Path], run_cli: CliRunner, tmp_path: Path
) -> None:
    err = rejected(run_cli, tmp_path, foreign_files["classes_10"])
    assert "'predictions'" in err
    assert "(2048, 1000), (1000,)" in err
    assert "(2048, 10), (10,)" in err


def test_other_architecture_lists_what_does_not_pair(
    foreign_files: dict[str, Path], run_cli: CliRunner, tmp_path: Path
) -> None:
    err = rejected(run_cli, tmp_path, foreign_files["tiny"])
    assert "cannot match the file's conv2d weights" in err
    assert "weights without a node: layer 'conv2d' has (3, 3, 3, 4), (4,)" in err
    assert "node without weights: block1_conv1 (conv2d) expects (3, 3, 3, 32)" in err


def truncated(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_keras_file(saved: Saved, run_cli: CliRunner, tmp_path: Path, fmt: str) -> None:
    source = saved.files[fmt]
    bad = truncated(source, tmp_path / source.name)
    err = rejected(run_cli, tmp_path, bad)
    assert "truncated" in err


Edit = Callable[[h5py.File], None]


def drop_legacy_layer(name: str, listed: bool) -> Edit:
    """Delete a layer's group from a legacy file, and from `layer_names` unless `listed`."""

    def edit(h5: h5py.File) -> None:
        layers = h5["model_weights"]
        del layers[name]
        if not listed:
            layers.attrs["layer_names"] = [n for n in layers.attrs["layer_names"] if n != name]

    return edit


def drop_legacy_weight(layer: str, weight: str) -> Edit:
    """Delete one weight of a layer from a legacy file, leaving it in `weight_names`."""

    def edit(h5: h5py.File) -> None:
        del h5["model_weights"][layer][weight]

    return edit


def drop_block14_sepconv2_bn(h5: h5py.File) -> None:
    """Keras 3 keys groups by class and position: find the only BatchNorm of 2048 channels."""
    groups = h5["layers"]
    [key] = [
        k
        for k in groups
        if k.startswith("batch_normalization") and groups[k]["vars"]["0"].shape == (2048,)
    ]
    del groups[key]


@pytest.mark.parametrize(
    ("fmt", "edit", "reported"),
    [
        pytest.param(
            "legacy_h5",
            drop_legacy_layer("block1_conv2_bn", listed=False),
            "node without weights: block1_conv2_bn (batch_norm) expects (64,)",
            id="legacy_unique_shape",
        ),
        pytest.param(
            "legacy_h5",
            drop_legacy_layer("block2_sepconv1_bn", listed=False),
            "block2_sepconv1_bn",  # named among the (128,) BatchNorms one of which is gone
            id="legacy_shared_shape",
        ),
        pytest.param(
            "legacy_h5",
            drop_legacy_layer("block5_sepconv1", listed=True),
            "layer 'block5_sepconv1' is listed in 'layer_names' but has no group",
            id="legacy_listed",
        ),
        pytest.param(
            "legacy_h5",
            drop_legacy_weight("block1_conv1", "block1_conv1/kernel"),
            "layer 'block1_conv1' lists weights the file does not hold: block1_conv1/kernel",
            id="legacy_weight",
        ),
        pytest.param(
            "weights_h5",
            drop_block14_sepconv2_bn,
            "node without weights: block14_sepconv2_bn (batch_norm) expects (2048,)",
            id="keras3_positional",
        ),
    ],
)
def test_missing_layer_is_named(
    saved: Saved, run_cli: CliRunner, tmp_path: Path, fmt: str, edit: Edit, reported: str
) -> None:
    bad = tmp_path / saved.files[fmt].name
    shutil.copy(saved.files[fmt], bad)
    with h5py.File(bad, "r+") as h5:
        edit(h5)
    err = rejected(run_cli, tmp_path, bad, LOGITS)
    assert reported in err


def test_missing_layer_report_is_short(
    saved: Saved, tmp_path: Path, xception: AnalysedGraph
) -> None:
    """By structure, the one BatchNorm missing from a positional file is all that is listed."""
    bad = tmp_path / "missing.weights.h5"
    shutil.copy(saved.files["weights_h5"], bad)
    with h5py.File(bad, "r+") as h5:
        drop_block14_sepconv2_bn(h5)
    with pytest.raises(SpecError) as caught:
        read_weights(bad, xception)
    assert caught.value.notes == (
        "node without weights: block14_sepconv2_bn (batch_norm) expects "
        "(2048,), (2048,), (2048,), (2048,)",
    )


def test_prelu_alpha_loads_from_a_keras_weights_file(tmp_path: Path) -> None:
    """A built-in op added through its op module and one rule per backend: Keras's own PReLU
    (alpha (1, 1, C)) read from a `.weights.h5` into both builds, outputs as Keras's."""
    from xgraph_keras.framework import keras

    spec = """\
xgraph: 1
name: prelu_net
inputs:
  - {name: image, shape: [6, 6, 3]}
nodes:
  - {name: conv, op: conv2d, filters: 4, kernel_size: 3}
  - {name: act, op: prelu}
  - {name: pool, op: global_avg_pool}
  - {name: head_act, op: prelu}
"""
    image = keras.Input((6, 6, 3), name="image")
    x = keras.layers.Conv2D(4, 3, name="conv")(image)
    x = keras.layers.PReLU(shared_axes=[1, 2], name="act")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.PReLU(name="head_act")(x)
    model = keras.Model(image, x)
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
    path = tmp_path / "prelu.weights.h5"
    model.save_weights(path)
    analysed = loads(spec)
    weights = read_weights(path, analysed)
    assert weights["act/alpha"].shape == (1, 1, 4)
    x = rng.normal(size=(2, 6, 6, 3)).astype(np.float32)
    expected = model.predict_on_batch(x)
    for name in ("torch", "keras"):
        backend = load_backend(name)
        (got,) = backend.predict(backend.build(analysed, weights), [x])
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize(("op", "case"), case_ids())
def test_keras_rules_state_the_facts_keras_files_record(op: str, case: str) -> None:
    """For every registered op (plugins too): the layer class a keras rule names is the class
    its lowering makes, its weights cover the op's parameters in Keras's order, and a legacy
    file's layer holding that example's weights is recognised as this op."""
    from backend_cases import one_op_spec

    from xgraph.backend.rules import op_rules
    from xgraph_keras.layer_kinds import kind_from_weight_names

    analysed = loads(one_op_spec(op, case))
    node = analysed.graph["out"] if "out" in analysed.graph else analysed.graph.nodes[0]
    params = analysed.counts[node.name].params
    rule = op_rules("keras")[node.op]
    if not params:
        return
    assert rule.layer_class == rule.lower(analysed, node)[-1].cls
    names = [name for name in rule.weights if name in {p.name for p in params}]
    assert sorted(names) == sorted(p.name for p in params)
    arrays = [np.zeros(p.shape) for name in names for p in params if p.name == name]
    weight_names = [f"{node.name}/{n}:0" for n in names]
    # A lone `gamma` fits LayerScale and a LayerNormalization without center alike: a file
    # read for a graph says which (its ops are preferred), as it does here.
    prefer = frozenset({node.op}) if names == ["gamma"] else frozenset()
    assert kind_from_weight_names(weight_names, arrays, prefer) == node.op


NESTED = """
xgraph: 1
name: nested
inputs:
  - {name: image, shape: [8, 8, 3]}
nodes:
  - {name: stem_conv, op: conv2d, filters: 4, kernel_size: 2, strides: 2}
  - {name: stem_layernorm, op: layer_norm}
  - {name: head, op: conv2d, filters: 4, kernel_size: 1}
"""


def _nested_model(sublayers: list[Any], top: list[Any]) -> Any:
    """A Keras model: a Sequential of `sublayers` (named "stem"), then the `top` layers."""
    keras = import_keras()
    image = keras.Input((8, 8, 3), name="image")
    x = keras.Sequential(sublayers, name="stem")(image)
    for layer in top:
        x = layer(x)
    model = keras.Model(image, x)
    randomise(model, seed=5)
    return model


def test_a_nested_models_layers_are_read_from_both_keras_files(tmp_path: Path) -> None:
    """ConvNeXt's stem is a Sequential inside the model: a `.keras` names its layers; a
    `.weights.h5` numbers them only inside the Sequential, and xgraph places them where the
    graph has a run of nodes that takes them, which here is one place."""
    keras = import_keras()
    model = _nested_model(
        [
            keras.layers.Conv2D(4, 2, strides=2, name="stem_conv"),
            keras.layers.LayerNormalization(name="stem_layernorm"),
        ],
        [keras.layers.Conv2D(4, 1, name="head")],
    )
    model.save(tmp_path / "nested.keras")
    model.save_weights(tmp_path / "nested.weights.h5")
    analysed = loads(NESTED)
    stem = model.get_layer("stem")
    want = {
        "stem_conv/kernel": stem.get_layer("stem_conv").get_weights()[0],
        "stem_layernorm/gamma": stem.get_layer("stem_layernorm").get_weights()[0],
        "head/kernel": model.get_layer("head").get_weights()[0],
    }
    for name in ("nested.keras", "nested.weights.h5"):
        weights = read_weights(tmp_path / name, analysed)
        for key, value in want.items():
            np.testing.assert_array_equal(weights[key], value, err_msg=f"{name}: {key}")


AMBIGUOUS = """
xgraph: 1
name: ambiguous
inputs:
  - {name: image, shape: [8, 8, 3]}
nodes:
  - {name: stem_norm, op: layer_norm}
  - {name: conv, op: conv2d, filters: 3, kernel_size: 1}
  - {name: norm, op: layer_norm}
"""


def test_a_nested_model_whose_layers_fit_twice_is_refused_from_a_weights_h5(
    tmp_path: Path,
) -> None:
    """The stem's one LayerNormalization fits either LayerNorm node: a `.weights.h5` cannot
    say which, and xgraph names the `.keras` file rather than guess; that one reads."""
    keras = import_keras()
    model = _nested_model(
        [keras.layers.LayerNormalization(name="stem_norm")],
        [keras.layers.Conv2D(3, 1, name="conv"), keras.layers.LayerNormalization(name="norm")],
    )
    model.save(tmp_path / "twice.keras")
    model.save_weights(tmp_path / "twice.weights.h5")
    analysed = loads(AMBIGUOUS)
    with pytest.raises(SpecError, match="fit the graph in more than one place") as raised:
        read_weights(tmp_path / "twice.weights.h5", analysed)
    assert "read the model's .keras file instead" in str(raised.value.hint)
    weights = read_weights(tmp_path / "twice.keras", analysed)
    gamma = model.get_layer("stem").get_layer("stem_norm").get_weights()[0]
    np.testing.assert_array_equal(weights["stem_norm/gamma"], gamma)
