"""`xgraph import` without a framework: Keras model configs written here as JSON (the form
Keras 3 and Keras 2 save) become specs a person would write, and what xgraph cannot import
is refused, every such layer named at once, nothing written."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import CliRunner

from xgraph.api import load


def tensor(layer: str, shape: list[int | None]) -> dict[str, Any]:
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": shape, "dtype": "float32", "keras_history": [layer, 0, 0]},
    }


def layer(cls: str, name: str, inputs: list[dict[str, Any]], **config: Any) -> dict[str, Any]:
    """A Keras 3 layer entry: several inputs as one list argument (Add, Concatenate)."""
    args: list[Any] = [inputs] if len(inputs) > 1 else inputs
    return {
        "module": "keras.layers",
        "class_name": cls,
        "config": {"name": name, "trainable": True, **config},
        "name": name,
        "inbound_nodes": [{"args": args, "kwargs": {}}],
    }


def conv3x3(name: str, source: dict[str, Any]) -> dict[str, Any]:
    """A Keras 3 Conv2D entry: 4 filters, 3x3, 'same', no bias."""
    return layer(
        "Conv2D",
        name,
        [source],
        filters=4,
        kernel_size=[3, 3],
        strides=[1, 1],
        padding="same",
        dilation_rate=[1, 1],
        groups=1,
        activation="linear",
        use_bias=False,
        data_format="channels_last",
    )


def small_model() -> dict[str, Any]:
    """A residual block and a classifier, as Keras 3 writes its config."""
    image = [None, 8, 8, 3]
    features = [None, 8, 8, 4]
    layers = [
        {
            "module": "keras.layers",
            "class_name": "InputLayer",
            "config": {"batch_shape": image, "dtype": "float32", "name": "image"},
            "name": "image",
            "inbound_nodes": [],
        },
        conv3x3("stem", tensor("image", image)),
        layer(
            "BatchNormalization",
            "stem_bn",
            [tensor("stem", features)],
            axis=-1,
            momentum=0.99,
            epsilon=0.001,
            center=True,
            scale=True,
        ),
        layer(
            "ReLU",
            "stem_relu",
            [tensor("stem_bn", features)],
            max_value=6.0,
            negative_slope=0.0,
            threshold=0.0,
        ),
        layer(
            "DepthwiseConv2D",
            "dw",
            [tensor("stem_relu", features)],
            kernel_size=[3, 3],
            strides=[1, 1],
            padding="same",
            depth_multiplier=1,
            dilation_rate=[1, 1],
            activation="linear",
            use_bias=True,
            data_format="channels_last",
        ),
        layer("Add", "sum", [tensor("dw", features), tensor("stem_relu", features)]),
        layer("Concatenate", "joined", [tensor("sum", features), tensor("stem", features)], axis=3),
        layer(
            "GlobalAveragePooling2D",
            "pool",
            [tensor("joined", [None, 8, 8, 8])],
            keepdims=False,
            data_format="channels_last",
        ),
        layer(
            "Dense",
            "predictions",
            [tensor("pool", [None, 8])],
            units=10,
            activation="softmax",
            use_bias=True,
        ),
    ]
    return {
        "module": "keras",
        "class_name": "Functional",
        "config": {
            "name": "small",
            "layers": layers,
            "input_layers": ["image", 0, 0],
            "output_layers": ["predictions", 0, 0],
        },
    }


def keras_file(folder: Path, config: dict[str, Any], name: str = "model.keras") -> Path:
    path = folder / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
    return path


def test_a_keras_config_becomes_the_spec_a_person_would_write(
    tmp_path: Path, run_cli: CliRunner
) -> None:
    model = keras_file(tmp_path, small_model())
    result = run_cli("import", model, "-o", tmp_path / "small.yaml")
    assert result.code == 0, result.err
    assert "wrote" in result.out and "9 nodes, 254 parameters" in result.out
    text = (tmp_path / "small.yaml").read_text()
    assert "params:\n  input_shape: {type: shape, default: [8, 8, 3]}\n" in text
    assert "  classes: {type: int, default: 10, min: 1}\n" in text
    # defaults left out, pairs as one number, inputs only where not the node before
    assert (
        "  - {name: stem, op: conv2d, filters: 4, kernel_size: 3, padding: same, use_bias: false}\n"
        in text
    )
    assert "  - {name: stem_bn, op: batch_norm}\n" in text
    assert "  - {name: stem_relu, op: activation, activation: relu6}\n" in text
    assert "  - {name: sum, op: add, inputs: [dw, stem_relu]}\n" in text
    assert "  - {name: joined, op: concat, inputs: [sum, stem]}\n" in text  # Keras's axis 3
    assert '{name: predictions, op: dense, units: "${classes}", activation: softmax}' in text
    analysed = load(tmp_path / "small.yaml", ["classes=3"])
    assert analysed.shapes["predictions"] == (3,)
    assert analysed.shapes["joined"] == (8, 8, 8)


def test_keras_2_connections_and_a_bare_config(tmp_path: Path, run_cli: CliRunner) -> None:
    """Keras 2's `[[layer, node, tensor, kwargs]]` inbound nodes, from a config.json given
    as the model file itself."""
    config = small_model()
    for entry in config["config"]["layers"]:
        refs = []
        for call in entry["inbound_nodes"]:
            args = call["args"][0] if isinstance(call["args"][0], list) else call["args"]
            refs.append([[t["config"]["keras_history"][0], 0, 0, {}] for t in args])
        entry["inbound_nodes"] = refs
    config["config"]["input_layers"] = [["image", 0, 0]]
    config["config"]["output_layers"] = [["predictions", 0, 0]]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    result = run_cli("import", path, "-o", tmp_path / "small.yaml", "--name", "from_keras_2")
    assert result.code == 0, result.err
    analysed = load(tmp_path / "small.yaml")
    assert analysed.name == "from_keras_2"
    assert analysed.graph["sum"].inputs == ("dw", "stem_relu")
    assert analysed.graph["joined"].attrs.axis == 2  # no rank recorded: Keras's 3 less one


def test_every_unsupported_layer_is_listed_and_nothing_is_written(
    tmp_path: Path, run_cli: CliRunner
) -> None:
    config = small_model()
    layers = config["config"]["layers"]
    layers[3] = layer("LeakyReLU", "stem_relu", [tensor("stem_bn", [None, 8, 8, 4])])
    layers[4] = {
        **layer("Lambda", "dw", [tensor("stem_relu", [None, 8, 8, 4])]),
        "config": {"name": "dw", "function": "print('never run')"},
    }
    model = keras_file(tmp_path, config)
    out = tmp_path / "small.yaml"
    result = run_cli("import", model, "-o", out)
    assert result.code == 2
    assert f"{model}: error: 2 layers xgraph has no op for" in result.err
    assert "config.layers[3]: LeakyReLU 'stem_relu'; nearest xgraph op: 'prelu'" in result.err
    assert "config.layers[4]: Lambda 'dw' (runs code the file holds)" in result.err
    assert "Traceback" not in result.err
    assert not out.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda layers: layers[2]["inbound_nodes"][0]["args"][0]["config"].update(
                keras_history=["nowhere", 0, 0]
            ),
            "config.layers[2].inbound_nodes: refers to layer 'nowhere', which the config does "
            "not list",
        ),
        (
            lambda layers: layers[1]["inbound_nodes"][0]["args"][0]["config"].update(
                keras_history=["predictions", 0, 0]
            ),
            "config.layers[1].inbound_nodes: refers to layer 'predictions', which the config "
            "does not list",
        ),
        (lambda layers: layers.append(layers[2]), "a second layer named 'stem_bn'"),
        (
            lambda layers: layers[2].update(inbound_nodes=[layers[2]["inbound_nodes"][0]] * 2),
            "config.layers[2]: layer called 2 times (a shared layer)",
        ),
    ],
    ids=["dangling", "cyclic", "duplicate", "shared"],
)
def test_broken_connections_are_located_refusals(
    change: Any, message: str, tmp_path: Path, run_cli: CliRunner
) -> None:
    config = small_model()
    change(config["config"]["layers"])
    result = run_cli("import", keras_file(tmp_path, config), "-o", tmp_path / "x.yaml")
    assert result.code == 2, result.out
    assert message in result.err
    assert not (tmp_path / "x.yaml").exists()


def test_a_file_that_is_no_model_is_refused(tmp_path: Path, run_cli: CliRunner) -> None:
    (tmp_path / "notes.keras").write_text("not a zip archive")
    result = run_cli("import", tmp_path / "notes.keras", "-o", tmp_path / "x.yaml")
    assert result.code == 2 and "not a zip archive" in result.err
    weights_only = tmp_path / "model.weights.h5"
    weights_only.write_bytes(b"")
    result = run_cli("import", weights_only, "-o", tmp_path / "x.yaml")
    assert result.code == 2 and "a .weights.h5 holds no model config" in result.err
    assert "--config CONFIG.json" in result.err
    result = run_cli("import", tmp_path / "model.pb", "-o", tmp_path / "x.yaml")
    assert result.code == 2 and "no such file" in result.err


def residual_stages(count: int) -> dict[str, Any]:
    """A stem and `count` residual stages `stage1`, ...: a convolution, BatchNorm and ReLU
    named after the stage, and Keras's automatically named sum (`add`, `add_1`, ...)."""
    shape = [None, 8, 8, 4]
    config = small_model()
    layers = config["config"]["layers"][:2]
    previous = "stem"
    for index in range(count):
        stage = f"stage{index + 1}"
        layers += [
            conv3x3(f"{stage}_conv", tensor(previous, shape)),
            layer(
                "BatchNormalization",
                f"{stage}_bn",
                [tensor(f"{stage}_conv", shape)],
                axis=-1,
                epsilon=0.001 * (index + 1),
            ),
            layer("ReLU", f"{stage}_relu", [tensor(f"{stage}_bn", shape)]),
        ]
        add = "add" if index == 0 else f"add_{index}"
        layers.append(layer("Add", add, [tensor(f"{stage}_relu", shape), tensor(previous, shape)]))
        previous = add
    config["config"]["layers"] = layers
    config["config"]["output_layers"] = [previous, 0, 0]
    return config


def test_repeated_stages_become_one_block_repeated(tmp_path: Path, run_cli: CliRunner) -> None:
    """Stages alike but for a value become one block with that value as a parameter, the
    automatically named sums taken in (their number a parameter too), and consecutive
    stages one `repeat`; --explain says which nodes went where; the spec expands to the
    file's graph (and --flat writes every node)."""
    model = keras_file(tmp_path, residual_stages(3))
    out = tmp_path / "stages.yaml"
    result = run_cli("import", model, "-o", out, "--explain")
    assert result.code == 0, result.err
    text = out.read_text()
    assert "blocks:\n  stage:\n    params:\n      epsilon: {type: float}\n" in text
    assert "      number: {type: int}\n" in text
    assert """      - {name: "add${'_' if number else ''}${number or ''}", op: add,""" in text
    for index in range(3):  # a float column is no progression: one `use` each
        assert (
            f"  - {{use: stage, name: stage{index + 1}, args: {{epsilon: 0.00{index + 1}, " in text
        )
    assert "stage1: block 'stage', 4 nodes stage1_conv .. add" in result.out
    assert "stage3: block 'stage', 4 nodes stage3_conv .. add_2" in result.out
    flat = tmp_path / "flat.yaml"
    assert run_cli("import", model, "-o", flat, "--flat").code == 0
    assert "blocks:" not in flat.read_text()
    a, b = load(out), load(flat)
    assert [(n.name, n.op, n.attrs, n.inputs) for n in a.graph.nodes] == [
        (n.name, n.op, n.attrs, n.inputs) for n in b.graph.nodes
    ]


def test_a_run_numbered_on_with_equal_values_is_one_repeat(tmp_path: Path) -> None:
    from xgraph.importing import imported_spec

    config = residual_stages(4)
    for entry in config["config"]["layers"]:
        if entry["class_name"] == "BatchNormalization":
            entry["config"]["epsilon"] = 0.001
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    text, analysed = imported_spec(path, str(tmp_path / "stages.yaml"))
    assert '  - {use: stage, name: "stage${i + 1}", repeat: 4, args: {number: "${i}"}}\n' in text
    assert analysed.graph["add_3"].inputs == ("stage4_relu", "add_2")
