"""Self-describing runs: `xgraph train` records the class names and the preprocessing in
state.json and in every model it exports (.pt2, .keras, .onnx), and `xgraph predict` classifies
images from a model file alone, the same in each format; bad input is a clean error."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xgraph.cli import main
from xgraph.training.serving import Serving, read_serving

CLASSES = ("blue", "green", "red")  # sorted: the labels' order
# Colour is the class, so a tiny model learns it in a few steps; a linear head (logits) in the
# Keras run, a softmax head in the torch run: predict must give probabilities from both.
SPEC = """\
xgraph: 1
name: colours
inputs: [{name: image, shape: [12, 12, 3]}]
nodes:
  - {name: conv, op: conv2d, filters: 4, kernel_size: 3, padding: same}
  - {name: gap, op: global_avg_pool}
  - {name: logits, op: dense, units: 3, activation: HEAD}
training:
  optimizer: {name: adam, learning_rate: 0.05}
  batch_size: 15
  epochs: 3
  validation_split: 0.1
"""
HEADS = {"torch": "softmax", "keras": "linear"}
RGB = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}


def _image(path: Path, colour: str, seed: int, size: int = 20) -> Path:
    """A noisy image of one colour, larger than the input (predict resizes it)."""
    noise = np.random.default_rng(seed).integers(-30, 30, (size, size, 3))
    pixels = np.clip(np.array(RGB[colour]) + noise, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("colours") / "data"
    for number, colour in enumerate(CLASSES):
        (root / colour).mkdir(parents=True)
        for index in range(20):
            _image(root / colour / f"{index:03d}.png", colour, 100 * number + index)
    return root


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """New images, one of each colour, in an order that is not the labels'."""
    folder = tmp_path_factory.mktemp("new")
    return [_image(folder / f"{c}.jpg", c, 999 + i) for i, c in enumerate(("red", "blue", "green"))]


def _run(backend: str, data: Path, out: Path) -> Path:
    spec = out.parent / f"colours_{backend}.yaml"
    spec.write_text(SPEC.replace("HEAD", HEADS[backend]))
    command = ["train", str(spec), "--backend", backend, "--data", str(data), "--out", str(out)]
    assert main(command) == 0
    return out


@pytest.fixture(scope="module")
def torch_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run("torch", data, tmp_path_factory.mktemp("torch") / "run")


@pytest.fixture(scope="module")
def keras_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run("keras", data, tmp_path_factory.mktemp("keras") / "run")


def _predict(capsys: pytest.CaptureFixture[str], *words: str) -> list[dict]:
    capsys.readouterr()
    assert main(["predict", *words, "--json"]) == 0
    return json.loads(capsys.readouterr().out)["predictions"]


def test_a_run_records_its_classes_and_preprocessing_everywhere(torch_run: Path) -> None:
    state = json.loads(
        (torch_run / (torch_run / "latest").read_text().strip() / "state.json").read_text()
    )
    assert state["serving"]["classes"] == list(CLASSES)
    assert state["serving"]["preprocessing"]["scaling"] == "x / 127.5 - 1"
    assert state["serving"]["preprocessing"]["resize"] == "bilinear"
    for suffix in (".pt2", ".onnx"):
        record = read_serving(torch_run / f"colours{suffix}")
        assert record == Serving("colours", CLASSES, (12, 12, 3), "softmax")
    import onnx
    import torch

    model = onnx.load(str(torch_run / "colours.onnx"))  # the record appended as protobuf
    onnx.checker.check_model(model, full_check=True)
    props = {prop.key: prop.value for prop in model.metadata_props}
    assert json.loads(props["xgraph_serving"])["classes"] == list(CLASSES)
    assert props["xgraph_spec"] == "colours"
    extra = {"xgraph.json": ""}
    torch.export.load(str(torch_run / "colours.pt2"), extra_files=extra)
    assert json.loads(extra["xgraph.json"])["classes"] == list(CLASSES)


def test_predict_gives_the_same_classes_from_every_format(
    torch_run: Path, keras_run: Path, images: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [str(path) for path in images]
    results = {
        name: _predict(capsys, str(model), *paths, "--top", "2")
        for name, model in {
            "pt2": torch_run / "colours.pt2",
            "torch run": torch_run,
            "torch onnx": torch_run / "colours.onnx",
            "keras": keras_run / "colours.keras",
            "keras onnx": keras_run / "colours.onnx",
        }.items()
    }
    for name, predictions in results.items():
        assert [p["top"][0]["class"] for p in predictions] == ["red", "blue", "green"], name
        for prediction in predictions:
            assert len(prediction["top"]) == 2
            assert 0 <= prediction["top"][1]["probability"] <= prediction["top"][0]["probability"]
            assert prediction["top"][0]["probability"] <= 1 + 1e-6
    for run in ("torch", "keras"):  # the same weights in two formats give the same numbers
        native = "pt2" if run == "torch" else "keras"
        for ours, theirs in zip(results[native], results[f"{run} onnx"], strict=True):
            np.testing.assert_allclose(
                [e["probability"] for e in ours["top"]],
                [e["probability"] for e in theirs["top"]],
                atol=1e-5,
            )
    # logits (the Keras run's linear head) come out as probabilities
    keras_all = _predict(capsys, str(keras_run / "colours.keras"), paths[0], "--top", "9")
    assert sum(e["probability"] for e in keras_all[0]["top"]) == pytest.approx(1, abs=1e-5)


def test_predict_prints_the_top_classes_as_text(
    torch_run: Path, images: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["predict", str(torch_run / "colours.onnx"), str(images[0]), "--top", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(images[0])
    assert lines[1].split()[1] == "red" and len(lines) == 2


def _record(classes: tuple[str, ...] = CLASSES) -> str:
    return json.dumps(Serving("m", classes, (8, 8, 3), "softmax").as_dict())


def _error(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    capsys.readouterr()
    assert main(["predict", *words]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_a_model_without_the_record_is_refused_naming_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "plain.keras"
    with zipfile.ZipFile(model, "w") as archive:
        archive.writestr("config.json", "{}")
    image = _image(tmp_path / "a.png", "red", 1)
    err = _error(capsys, str(model), str(image))
    assert f"{model}: error: this model has no xgraph serving record (class names" in err
    assert "hint: xgraph train writes it" in err


def test_bad_models_and_images_are_clean_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = _image(tmp_path / "a.png", "red", 1)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert "not a model file xgraph reads ('.txt')" in _error(capsys, str(text), str(image))
    missing = tmp_path / "gone.onnx"
    assert f"{missing}: error: no such file" in _error(capsys, str(missing), str(image))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\xff" * 50)
    assert "cannot read this .onnx model" in _error(capsys, str(garbage), str(image))
    assert "not a training run" in _error(capsys, str(tmp_path), str(image))
    model = tmp_path / "m.keras"
    with zipfile.ZipFile(model, "w") as archive:  # the record is read before any framework
        archive.writestr("xgraph.json", _record())
    err = _error(capsys, str(model), str(text))
    assert f"{text}: error: cannot decode image" in err
    broken = tmp_path / "broken.keras"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("xgraph.json", _record(classes=()))
    assert "unreadable xgraph serving record" in _error(capsys, str(broken), str(image))


def test_top_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "m.onnx", "a.png", "--top", "0"])
    assert exit_info.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err
