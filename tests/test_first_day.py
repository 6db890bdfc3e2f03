"""The first day of a variant author (issue 30), as a test: a half-width Xception at a reduced
size, trained a few epochs on a small image folder. With `defaults: {batch_norm: {momentum:
0.9}}` the model scores in inference mode (validation, with the moving statistics) as it did
while training; without it, `xgraph train` warns before its first step that the statistics
will not settle, and names the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from digits import write_digits

from xgraph.cli import main

ROOT = Path(__file__).resolve().parent.parent

# 3 classes (the folders: digits 0, 1 and 2) at 71x71, Keras's smallest Xception input, half
# the width and one middle block; 24 images of a class, half held out: 36 to train, 9 steps of
# 4 an epoch, 108 steps in all, more than the 66 that momentum 0.9 needs to settle
# (xgraph.training.settle) and far fewer than the 688 that Keras's 0.99 needs.
VARIANT = f"""\
xgraph: 1
extends: {ROOT / "specs/xception.yaml"}
name: first_day
params:
  classes: {{default: 3}}
  input_shape: {{default: [71, 71, 3]}}
  middle_flow_blocks: {{default: 1}}
  width: {{default: 0.5}}
DEFAULTS
training:
  optimizer: {{name: adam, learning_rate: 0.002}}
  schedule: {{name: cosine, warmup_epochs: 1}}
  weight_decay: 0.0
  batch_size: 4
  epochs: 12
  validation_split: 0.5
"""
FIX = "defaults:\n  batch_norm: {momentum: 0.9}"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_digits(tmp_path_factory.mktemp("first_day") / "digits", per_class=24)
    for digit in range(3, 10):
        shutil.rmtree(root / str(digit))
    return root


def _spec(tmp_path: Path, defaults: str) -> Path:
    path = tmp_path / "first_day.yaml"
    path.write_text(VARIANT.replace("DEFAULTS", defaults))
    return path


def test_with_the_defaults_validation_scores_as_training_did(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, out = _spec(tmp_path, FIX), tmp_path / "run"
    status = main(
        ["train", str(spec), "--backend", "torch", "--data", str(folder), "--out", str(out)]
    )
    printed = capsys.readouterr()
    assert status == 0, printed.err
    assert "will not settle" not in printed.err
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["accuracy"] > 0.5, last  # it learned something
    assert abs(last["val_accuracy"] - last["accuracy"]) <= 0.05, last


def test_without_them_train_warns_and_validation_is_off(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, out = _spec(tmp_path, ""), tmp_path / "run"
    status = main(
        ["train", str(spec), "--backend", "torch", "--data", str(folder), "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert status == 0, err
    assert err.count("will not settle") == 1
    warning = err[err.index("xgraph train: warning:") :]
    assert warning.index("will not settle") < warning.index("epoch 1/12")  # before training
    assert "after 108 optimizer steps 19 batch_norm nodes with momentum 0.99 still keep 34%" in err
    assert "hint: a momentum of 0.9: 'defaults: {batch_norm: {momentum: 0.9}}' in the spec" in err
    # the run: it learns, yet scores far worse with the moving statistics
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["accuracy"] - last["val_accuracy"] > 0.2, last
