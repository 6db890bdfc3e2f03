"""`--device`, `--precision` and what both backends are handed: bf16-mixed trains the digits
on a CPU in torch and Keras, fp16-mixed and devices the machine lacks are refused with the
reason, and every step of torch and Keras gets the same augmented pixels whatever the number
of loading workers. The CUDA path runs where torch sees a GPU."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.digits import write_digits
from xgraph.cli import main

ROOT = Path(__file__).resolve().parent.parent
TINY = str(ROOT / "examples/specs/xception_tiny.yaml")
SMALL = """\
xgraph: 1
name: small
inputs: [{name: image, shape: [16, 16, 1]}]
nodes:
  - {name: conv, op: conv2d, filters: 6, kernel_size: 3, strides: 2, padding: same}
  - {name: bn, op: batch_norm}
  - {name: act, op: activation, activation: relu}
  - {name: gap, op: global_avg_pool}
  - {name: logits, op: dense, units: 10, activation: softmax}
training:
  optimizer: {name: adam, learning_rate: 0.01}
  batch_size: 10
  epochs: 2
  validation_split: 0.2
  seed: 4
  augment: {random_resized_crop: {scale: [0.5, 1.0]}, horizontal_flip: true}
"""


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_digits(tmp_path_factory.mktemp("digits") / "digits")


@pytest.fixture(scope="module")
def few_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_digits(tmp_path_factory.mktemp("few") / "digits", per_class=12)


def _train(backend: str, data: Path, out: Path, *extra: str, spec: str = TINY) -> list[str]:
    return ["train", spec, "--backend", backend, "--data", str(data), "--out", str(out), *extra]


def _last_record(out: Path) -> dict[str, Any]:
    return json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_bf16_mixed_trains_the_digits_on_a_cpu(
    backend: str, digits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    status = main(_train(backend, digits, out, "--precision", "bf16-mixed", "--no-export"))
    printed = capsys.readouterr()
    assert status == 0, printed.err
    assert "bf16-mixed" in printed.err and ("on cpu" in printed.err or "on CPU:0" in printed.err)
    assert _last_record(out)["val_accuracy"] >= 0.9


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_fp16_mixed_is_refused_on_a_cpu(
    backend: str, few_digits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if backend == "torch" and _has_cuda():
        pytest.skip("torch sees a CUDA GPU: fp16-mixed is allowed there")
    status = main(_train(backend, few_digits, tmp_path / "run", "--precision", "fp16-mixed"))
    err = capsys.readouterr().err
    assert status == 2
    assert "error: --precision fp16-mixed needs a GPU" in err
    assert "hint: --precision bf16-mixed" in err
    assert "Traceback" not in err and not (tmp_path / "run" / "metrics.jsonl").exists()


@pytest.mark.parametrize(
    ("backend", "device", "message"),
    [
        ("torch", "cuda", "--device cuda: torch sees no CUDA GPU"),
        ("torch", "cuda:1", "--device cuda:1: torch sees no CUDA GPU"),
        ("keras", "cuda:0", "--device cuda:0: TensorFlow sees 0 GPU(s)"),
        ("keras", "mps", "--device mps: TensorFlow has no MPS device"),
        ("torch", "gpu", "--device gpu: not a device (auto, cpu, cuda, cuda:N or mps)"),
    ],
)
def test_a_device_the_machine_lacks_is_refused(
    backend: str,
    device: str,
    message: str,
    few_digits: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if "cuda" in device and _has_cuda():
        pytest.skip("this machine has a CUDA GPU")
    status = main(_train(backend, few_digits, tmp_path / "run", "--device", device))
    err = capsys.readouterr().err
    assert status == 2, err
    assert f"error: {message}" in err and "Traceback" not in err


@pytest.mark.skipif("not _has_cuda()", reason="no CUDA GPU on this machine (the CPU runs all else)")
@pytest.mark.parametrize("precision", ["fp32", "bf16-mixed", "fp16-mixed"])
def test_torch_trains_on_a_cuda_gpu(
    precision: str, digits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    extra = ("--device", "cuda", "--precision", precision)
    assert main(_train("torch", digits, out, *extra)) == 0
    assert "torch on cuda:0" in capsys.readouterr().err
    assert _last_record(out)["val_accuracy"] >= 0.9
    weights = out / "xception_tiny.safetensors"
    evaluate = ["evaluate", TINY, "--weights", str(weights), "--data", str(digits), "--json"]
    assert main([*evaluate, "--split", "validation", *extra]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["top1_accuracy"] == _last_record(out)["val_accuracy"]


def _recording_trainers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every train_step's images and labels, hashed, in order, for any backend."""
    import xgraph.training.loop as loop

    seen: list[str] = []
    make = loop.load_trainer

    def load_recording(backend: str):
        real = make(backend)

        def recording(*args: Any, **kwargs: Any):
            trainer = real(*args, **kwargs)
            step = trainer.train_step

            def train_step(images: np.ndarray, labels: np.ndarray, *rest: Any):
                digest = hashlib.sha256(np.ascontiguousarray(images).tobytes())
                digest.update(np.asarray(labels, np.int64).tobytes())
                seen.append(digest.hexdigest())
                return step(images, labels, *rest)

            trainer.train_step = train_step
            return trainer

        return recording

    monkeypatch.setattr(loop, "load_trainer", load_recording)
    return seen


def test_torch_and_keras_train_on_the_same_augmented_pixels_with_any_workers(
    few_digits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL)
    seen = _recording_trainers(monkeypatch)
    runs = {}
    for backend, workers in [("torch", "0"), ("keras", "2"), ("torch", "1")]:
        out = tmp_path / f"{backend}-{workers}"
        args = _train(backend, few_digits, out, "--workers", workers, "--no-export", spec=str(spec))
        assert main(args) == 0
        runs[backend, workers] = seen.copy()
        seen.clear()
    assert len(runs["torch", "0"]) == 20  # 2 epochs of 10 steps
    assert runs["keras", "2"] == runs["torch", "0"] == runs["torch", "1"]
    assert len(set(runs["torch", "0"])) == 20  # each step its own batch


def test_evaluate_measures_any_split_and_refuses_what_it_cannot_measure(
    few_digits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL)
    out = tmp_path / "run"
    assert main(_train("torch", few_digits, out, "--no-export", spec=str(spec))) == 0
    weights = str(out / (out / "latest").read_text().strip() / "weights.safetensors")
    base = ["evaluate", str(spec), "--weights", weights, "--data", str(few_digits), "--json"]
    sizes = {}
    for split in ("all", "train", "validation"):
        capsys.readouterr()
        assert main([*base, "--split", split, "--backend", "keras"]) == 0
        report = json.loads(capsys.readouterr().out)
        sizes[split] = report["images"]
        assert sum(row["images"] for row in report["classes"]) == report["images"]
        assert report["split"] == split and report["device"] == "CPU:0"
    assert sizes == {"all": 120, "train": 100, "validation": 20}
    assert main([*base[:-1], "--split", "validation"]) == 0  # text, torch
    text = capsys.readouterr().out
    assert "20 images of" in text and "(validation split)" in text and "top-5 accuracy" in text
    # Refusals: status 2, the reason, no traceback.
    refused = [
        ([*base, "--split", "validation", "--set", "training.validation_split=0.0"], "holds no"),
        ([*base, "--set", "training.batch_size=0"], "batch_size"),
        (["evaluate", str(spec), "--weights", str(tmp_path / "none.safetensors"),
          "--data", str(few_digits)], "none.safetensors"),
        ([*base, "--data", str(tmp_path / "nowhere")], "no such folder"),
    ]  # fmt: skip
    for args, message in refused:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
