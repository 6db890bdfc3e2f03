"""`xgraph import` of files Keras itself writes: a `.keras` archive, a legacy `.h5` and a
`.weights.h5` with its config; the spec's builds with the file's weights computing Keras's
numbers (`--check`), and Xception's import equal to specs/xception.yaml node for node.
(Every keras.applications constructor is imported in tests/test_zoo*.py, from the model the
zoo tests build anyway.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import CliRunner

from tests.zoo_harness import assert_same_graph, import_keras
from xgraph.api import load
from xgraph.importing import imported_spec
from xgraph.weights.formats import read_weights

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def small_model() -> Any:
    """A small functional model with a residual sum, a concatenation and a separable
    convolution, its weights and BatchNorm statistics random."""
    keras = import_keras()
    layers = keras.layers
    keras.utils.set_random_seed(4)
    image = keras.Input((17, 17, 3), name="image")
    x = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem")(image)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    branch = layers.SeparableConv2D(8, 3, padding="same", name="sep")(x)
    x = layers.Add(name="sum")([x, branch])
    x = layers.Concatenate(name="joined")([x, layers.MaxPooling2D(3, 1, "same", name="pool")(x)])
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(5, name="logits")(x)
    model = keras.Model(image, x, name="small")
    bn = model.get_layer("stem_bn")
    rng = np.random.default_rng(0)
    bn.moving_mean.assign(rng.normal(0, 0.2, 8).astype("float32"))
    bn.moving_variance.assign(rng.uniform(0.5, 1.5, 8).astype("float32"))
    return model


def test_a_keras_file_imports_with_its_weights_and_checks_equal(
    small_model: Any, tmp_path: Path, run_cli: CliRunner
) -> None:
    path = tmp_path / "small.keras"
    small_model.save(path)
    spec, weights = tmp_path / "small.yaml", tmp_path / "small.safetensors"
    result = run_cli("import", path, "-o", spec, "--weights-out", weights, "--check")
    assert result.code == 0, result.err
    assert "source vs torch" in result.out and "source vs onnx" in result.out
    assert result.out.count("all 9 nodes agree") == 3  # each backend, every layer
    analysed = load(spec)
    want = small_model.predict_on_batch(np.ones((1, 17, 17, 3), "float32"))
    from xgraph.backend import load_backend

    torch = load_backend("torch")
    got = torch.predict(
        torch.build(analysed, read_weights(weights, analysed)), [np.ones((1, 17, 17, 3), "float32")]
    )[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_a_legacy_h5_and_a_weights_file_with_its_config(
    small_model: Any, tmp_path: Path, run_cli: CliRunner
) -> None:
    legacy = tmp_path / "small.h5"
    small_model.save(legacy)
    result = run_cli("import", legacy, "-o", tmp_path / "from_h5.yaml", "--check")
    assert result.code == 0, result.err
    weights = tmp_path / "small.weights.h5"
    small_model.save_weights(weights)
    config = tmp_path / "config.json"
    config.write_text(small_model.to_json())
    result = run_cli(
        "import", weights, "--config", config, "-o", tmp_path / "from_weights.yaml", "--check"
    )
    assert result.code == 0, result.err
    texts = [(tmp_path / f"from_{kind}.yaml").read_text() for kind in ("h5", "weights")]
    assert texts[0].split("\n", 2)[2] == texts[1].split("\n", 2)[2]  # all but the header


def test_imported_xception_is_the_spec(tmp_path: Path) -> None:
    keras = import_keras()
    keras.backend.clear_session()
    model = keras.applications.Xception(
        weights=None, input_shape=(71, 71, 3), classifier_activation=None
    )
    config = tmp_path / "xception.json"
    config.write_text(model.to_json())
    text, got = imported_spec(config, str(tmp_path / "xception.yaml"))
    want = load(
        ROOT / "specs" / "xception.yaml",
        ["input_shape=[71, 71, 3]", "classifier_activation=none"],
    )
    assert_same_graph(got, want)
    # the middle flow: one block repeated 8 times, Keras's automatic `add_3` ... `add_10`
    # numbered with the repetition
    assert (
        '  - {use: block, name: "block${i + 5}", repeat: 8, args: {number: "${i + 3}"}}\n' in text
    )
    # the entry flow's three downsampling modules and the exit flow's: one block, block2
    # without the ReLU that starts the others
    instances = {n.block[0]: n.block_uses[0] for n in got.graph.nodes if n.block}
    assert {instances[f"block{i}"] for i in (2, 3, 4, 13)} == {"block_2"}
    assert {instances[f"block{i}"] for i in range(5, 13)} == {"block"}
    assert "has_sepconv1_act: false" in text.split("name: block2,", 1)[1].split("\n  - ", 1)[0]
    hand_written = (ROOT / "specs" / "xception.yaml").read_text()
    assert len(text.splitlines()) <= 1.5 * len(hand_written.splitlines())
