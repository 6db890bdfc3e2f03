"""`xgraph train` end to end: it learns a real dataset in each backend, resumes a killed run
to the same weights, trains data-parallel like one process, and refuses bad input cleanly.

The dataset is scikit-learn's bundled 8x8 digits, written as an image folder by the test and
upsampled by the loader to the spec's input (tests/digits.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from digits import write_digits
from safetensors.numpy import load_file

from xgraph.cli import main
from xgraph.training.recipe import recipe_of

ROOT = Path(__file__).resolve().parent.parent
TINY = str(ROOT / "examples/specs/xception_tiny.yaml")

# A small network without BatchNorm: data-parallel training equals one process. Its convolutions
# have no bias, as Xception's: a conv bias's gradient sums every position of every example, and
# adding two half-batch sums instead of one whole sum moves it by about 1e-5 relative in Keras
# after 3 steps (measured), float rounding that says nothing about the engines' exchange.
PLAIN = """\
xgraph: 1
name: plain
inputs: [{name: image, shape: [16, 16, 1]}]
nodes:
  - {name: conv, op: conv2d, filters: 6, kernel_size: 3, strides: 2, padding: same,
     use_bias: false}
  - {name: act, op: activation, activation: relu}
  - {name: sep, op: separable_conv2d, filters: 8, kernel_size: 3, padding: same,
     use_bias: false}
  - {name: gap, op: global_avg_pool}
  - {name: logits, op: dense, units: 10, activation: softmax}
training:
  optimizer: {name: sgd, learning_rate: 0.1, momentum: 0.9}
  schedule: {name: cosine, warmup_epochs: 0.5}
  weight_decay: 1.0e-3
  label_smoothing: 0.1
  batch_size: 20
  epochs: 1
  validation_split: 0.2
"""
BATCH_NORM = PLAIN.replace(
    "  - {name: act, op: activation",
    "  - {name: conv_bn, op: batch_norm}\n  - {name: act, op: activation",
).replace("name: plain", "name: plain_bn")


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_digits(tmp_path_factory.mktemp("digits") / "digits")


@pytest.fixture(scope="module")
def few_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 of each digit: 100 to train (10 steps of 10), 20 to validate."""
    return write_digits(tmp_path_factory.mktemp("few") / "digits", per_class=12)


def _weights(out: Path, name: str) -> dict[str, np.ndarray]:
    return load_file(str(out / f"{name}.safetensors"))


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _assert_close(actual: dict, expected: dict, rtol: float) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        scale = max(float(np.abs(value).max()), 1e-12)
        difference = float(np.abs(actual[key] - value).max()) / scale
        assert difference <= rtol, f"{key}: {difference:.2e} relative"


# Inception's crop, milder than ImageNet's (an 8x8 digit cropped to 8% is no digit).
DIGIT_CROP = "training.augment={random_resized_crop: {scale: [0.6, 1.0], ratio: [0.8, 1.25]}}"


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_a_small_xception_learns_the_digits(
    backend: str, digits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With augmentation on; then `xgraph evaluate` measures the run's weights on its
    validation split: the last epoch's accuracy and top-5, exactly."""
    out = tmp_path / "run"
    command = ["train", TINY, "--backend", backend, "--data", str(digits), "--out", str(out)]
    status = main([*command, "--set", DIGIT_CROP])
    printed = capsys.readouterr()
    assert status == 0, printed.err
    assert f"xgraph train: {backend} on " in printed.err
    records = _records(out)
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert records[-1]["val_accuracy"] >= 0.9, records
    assert records[-1]["loss"] < records[0]["loss"]
    assert f"epoch 4/4: loss {records[-1]['loss']:.4f}" in printed.err
    assert f"top-5 {records[-1]['val_top5_accuracy']:.4f}" in printed.err
    assert f"validation accuracy {records[-1]['val_accuracy']:.4f}" in printed.out
    # The exported model is the trained one: it classifies the digits as well.
    from xgraph.api import load
    from xgraph.backend import load_backend
    from xgraph.training.data import scan_image_folder, split
    from xgraph.training.images import ImageLoader

    analysed = load(TINY)
    folder = scan_image_folder(digits)
    _, validation = split(folder, recipe_of(analysed).validation_split, recipe_of(analysed).seed)
    images = ImageLoader(folder, analysed.input_shapes()[0]).load(validation)
    model_file = out / f"xception_tiny.{'pt2' if backend == 'torch' else 'keras'}"
    if backend == "torch":
        import torch

        program = torch.export.load(str(model_file)).module()
        with torch.no_grad():
            scores = program(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()
    else:
        import keras

        scores = np.asarray(keras.saving.load_model(model_file)(images))
    labels = folder.labels[validation]
    accuracy = float((scores.argmax(1) == labels).mean())
    assert accuracy == pytest.approx(records[-1]["val_accuracy"], abs=1e-9)
    top5 = np.argsort(-scores, axis=1)[:, :5] == labels[:, None]
    assert float(top5.any(axis=1).mean()) == pytest.approx(records[-1]["val_top5_accuracy"])
    weights = load_backend(backend).predict(
        load_backend(backend).build(analysed, _weights(out, "xception_tiny")), [images[:4]]
    )[0]
    np.testing.assert_allclose(weights, scores[:4], rtol=1e-4, atol=1e-6)

    evaluate = ["evaluate", TINY, "--weights", str(out / "xception_tiny.safetensors")]
    evaluate += ["--data", str(digits), "--backend", backend, "--split", "validation", "--json"]
    assert main(evaluate) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == len(validation)
    assert report["top1_accuracy"] == records[-1]["val_accuracy"]
    assert report["top5_accuracy"] == records[-1]["val_top5_accuracy"]
    assert report["loss"] == pytest.approx(records[-1]["val_loss"], rel=1e-6)
    rows = report["classes"]
    assert [row["name"] for row in rows] == [str(digit) for digit in range(10)]
    for digit, row in enumerate(rows):
        mine = labels == digit
        assert row["images"] == int(mine.sum())
        assert row["top1_accuracy"] == pytest.approx(
            float((scores[mine].argmax(1) == digit).mean())
        )
        assert row["top5_accuracy"] == pytest.approx(float(top5[mine].any(axis=1).mean()))


def _train(spec: Path, backend: str, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train",
        str(spec),
        "--backend",
        backend,
        "--data",
        str(data),
        "--out",
        str(out),
        *extra,
    ]


def _spec(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# Runs `xgraph train ARGS...` and SIGKILLs itself once the checkpoint of step KILL_AT is
# written: a kill mid-epoch wherever the scheduler puts this test process (polling for a
# mid-epoch checkpoint from outside can miss it on a loaded machine).
KILLED_AT_STEP = """\
import os, signal, sys
import xgraph.training.loop as loop
from xgraph.cli import main

kill_at = int(sys.argv[1])
save = loop.save_checkpoint

def save_then_die(out, analysed, backend, position, *args):
    folder = save(out, analysed, backend, position, *args)
    if position.step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return folder

loop.save_checkpoint = save_then_die
sys.exit(main(sys.argv[2:]))
"""


EVERY_STEP = ("--checkpoint-every", "1")
# The resumed runs crop and flip: the pixels after a resume are those of the straight run.
AUGMENTED = "  augment: {random_resized_crop: {scale: [0.5, 1.0]}, horizontal_flip: true}\n"


def test_resume_after_a_kill_mid_epoch_reaches_the_same_weights(
    few_digits: Path, tmp_path: Path
) -> None:
    spec = _spec(
        tmp_path,
        BATCH_NORM.replace("batch_size: 20", "batch_size: 10").replace("epochs: 1", "epochs: 2")
        + "  seed: 3\n"
        + AUGMENTED,
    )
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    # decoded in the training thread; the killed and resumed runs in a worker per core
    assert main(_train(spec, "torch", few_digits, straight, "--workers", "0")) == 0
    script = tmp_path / "killed_at.py"
    script.write_text(KILLED_AT_STEP)
    killed_run = subprocess.run(
        [
            sys.executable,
            str(script),
            "13",
            *_train(spec, "torch", few_digits, killed, *EVERY_STEP),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed_run.returncode == -signal.SIGKILL, killed_run.stderr
    state = json.loads(
        (killed / (killed / "latest").read_text().strip() / "state.json").read_text()
    )
    assert state["position"]["step"] == 13 and state["position"]["batch"] == 3, state
    assert not (killed / "plain_bn.safetensors").exists()
    assert main(_train(spec, "torch", few_digits, killed, "--resume")) == 0
    _assert_close(_weights(killed, "plain_bn"), _weights(straight, "plain_bn"), 1e-6)
    _assert_same_records(killed, straight)


def _assert_same_records(out: Path, expected: Path) -> None:
    """The runs' metrics agree, timings aside."""
    keys = ("epoch", "step", "learning_rate", "loss", "accuracy", "val_loss", "val_accuracy")
    table = [[[record[key] for key in keys] for record in _records(run)] for run in (out, expected)]
    np.testing.assert_allclose(table[0], table[1], rtol=1e-5)


def test_ctrl_c_leaves_a_checkpoint_the_run_resumes_from_to_the_same_weights(
    few_digits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Keras: Ctrl-C mid-epoch (a KeyboardInterrupt at step 14 of 20) ends with status 130 and
    names the newest checkpoint; --resume from it gives the uninterrupted run's weights."""
    import xgraph.training.loop as loop

    spec = _spec(
        tmp_path,
        BATCH_NORM.replace("batch_size: 20", "batch_size: 10")
        .replace("epochs: 1", "epochs: 2")
        .replace("name: sgd, learning_rate: 0.1", "name: rmsprop, learning_rate: 0.01")
        + AUGMENTED,
    )
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert main(_train(spec, "keras", few_digits, straight)) == 0
    rate = loop.learning_rate

    def interrupted_at_14(recipe, step: int, steps_per_epoch: int) -> float:
        if step == 14:
            raise KeyboardInterrupt
        return rate(recipe, step, steps_per_epoch)

    monkeypatch.setattr(loop, "learning_rate", interrupted_at_14)
    capsys.readouterr()
    assert main(_train(spec, "keras", few_digits, stopped, "--checkpoint-every", "4")) == 130
    assert "interrupted at step 14: the newest complete checkpoint is " in capsys.readouterr().err
    assert (stopped / "latest").read_text().strip() == "checkpoint-12"
    monkeypatch.setattr(loop, "learning_rate", rate)
    assert main(_train(spec, "keras", few_digits, stopped, "--resume")) == 0
    _assert_close(_weights(stopped, "plain_bn"), _weights(straight, "plain_bn"), 1e-6)
    _assert_same_records(stopped, straight)


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xgraph", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


@pytest.mark.parametrize(
    ("backend", "text", "extra"),
    [
        ("torch", PLAIN, ()),
        ("keras", PLAIN, ()),
        ("keras", BATCH_NORM, ("--sync-batch-norm",)),
    ],
    ids=["torch-ddp", "keras-multiworker", "keras-sync-batch-norm"],
)
def test_two_processes_train_as_one_with_the_same_global_batch(
    backend: str, text: str, extra: tuple[str, ...], few_digits: Path, tmp_path: Path
) -> None:
    """100 training images in batches of 32: 3 steps, each process taking 16 of each batch;
    the engines exchange the gradients (and, synchronised, the BatchNorm statistics)."""
    spec = _spec(tmp_path, text)
    name = "plain_bn" if "batch_norm" in text else "plain"
    one, two = tmp_path / "one", tmp_path / "two"
    extra = ("--batch", "32", *extra)
    assert main(_train(spec, backend, few_digits, one, *extra)) == 0
    done = _run_cli(*_train(spec, backend, few_digits, two, "--nproc", "2", *extra), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"trained {name} ({backend}, 2 processes): 1 epoch" in done.stdout
    _assert_close(_weights(two, name), _weights(one, name), 1e-5)
    _assert_same_records(two, one)


def test_torch_refuses_synchronised_batch_norm_on_cpu(
    few_digits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path, BATCH_NORM)
    done = _run_cli(
        *_train(spec, "torch", few_digits, tmp_path / "out", "--nproc", "2", "--sync-batch-norm"),
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "error: " in done.stderr and "SyncBatchNorm" in done.stderr
    assert "Traceback" not in done.stderr


def _corrupt(root: Path) -> Path:
    folder = write_digits(root, per_class=3)
    (folder / "7" / "0002.png").write_bytes(b"\x89PNG not really")
    return folder


def _empty(root: Path) -> Path:
    root.mkdir()
    return root


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (
            "bad training",
            "--set:1:33: error: training: optimizer 'sgd' has no setting 'lerning_rate'",
        ),
        ("missing data", "nothere: error: "),
        ("empty data", "empty: error: "),
        ("corrupt image", "0002.png: error: "),
        ("wrong classes", "error: 10 class folders, but the model 'five' gives output 'logits'"),
        ("other spec", "state.json: error: the checkpoint is of spec 'plain'"),
        ("existing run", "error: already holds a training run"),
    ],
)
def test_bad_input_is_a_clean_located_error(
    case: str,
    expected: str,
    few_digits: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec, data, out, extra = _spec(tmp_path, PLAIN), few_digits, tmp_path / "out", []
    if case == "bad training":
        extra = ["--set", "training.optimizer.lerning_rate=0.1"]
    elif case == "missing data":
        data = tmp_path / "nothere"
    elif case == "empty data":
        data = _empty(tmp_path / "empty")
    elif case == "corrupt image":
        data = _corrupt(tmp_path / "corrupt")
    elif case == "wrong classes":
        spec = _spec(tmp_path, PLAIN.replace("units: 10", "units: 5").replace("plain", "five"))
    elif case in ("other spec", "existing run"):
        assert main(_train(spec, "torch", data, out)) == 0
        if case == "other spec":
            spec = _spec(tmp_path, BATCH_NORM, "other.yaml")
            extra = ["--resume"]
    capsys.readouterr()
    status = main(_train(spec, "torch", data, out, *extra))
    error = capsys.readouterr().err
    assert status == 2, error
    assert expected in error
    assert "Traceback" not in error
