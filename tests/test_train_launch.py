"""`xgraph train --nproc 2` ends cleanly: runs whose validation leaves a replica a short or an
empty share exit 0 with every artifact in both backends (the soak of benchmarks/soak_train.py,
one run per folder here); a worker killed mid-epoch is reported by rank, the launcher stops
the other and leaves no process behind, and `--resume` completes the run; a run's folder that
is a file, or inside the training data, is refused before anything starts."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from xgraph.training.replicas import from_environment

ROOT = Path(__file__).resolve().parent.parent


def _soak_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak_train", ROOT / "benchmarks/soak_train.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak_train"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


soak_train = _soak_module()


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_runs_with_short_and_empty_shares_end_cleanly(backend: str, tmp_path: Path) -> None:
    outcomes = soak_train.soak(backend, len(soak_train.FOLDERS), tmp_path)
    for folder, outcome in zip(soak_train.FOLDERS, outcomes, strict=True):
        assert outcome.ok, (folder.name, outcome.status, outcome.missing, outcome.output[-3000:])


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (read from /proc: no psutil)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _rank(pid: int, backend: str) -> int:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    environ = dict(item.decode().split("=", 1) for item in raw if b"=" in item)
    return from_environment(backend, environ).rank


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


# Heavier steps than the soak's (about 65 ms on 2 cores, 180 of them): the run is still far
# from its end when the kill lands, however slowly this test process gets to it.
KILLED = """\
xgraph: 1
name: soak
inputs: [{name: image, shape: [128, 128, 3]}]
nodes:
  - {name: stem, op: conv2d, filters: 64, kernel_size: 3, padding: same, use_bias: false}
  - {name: conv, op: conv2d, filters: 64, kernel_size: 3, padding: same, use_bias: false}
  - {name: conv_bn, op: batch_norm, momentum: 0.9}
  - {name: act, op: activation, activation: relu}
  - {name: gap, op: global_avg_pool}
  - {name: logits, op: dense, units: 3, activation: softmax}
training:
  optimizer: {name: sgd, learning_rate: 0.01, momentum: 0.9}
  batch_size: 2
  epochs: 5
  validation_split: 0.2
"""


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_a_killed_worker_is_named_the_other_stopped_and_resume_completes(
    backend: str, tmp_path: Path
) -> None:
    folder = soak_train.Folder("many", per_class=30, batch=2, shares="1+1")
    data = soak_train.write_folder(tmp_path, folder)
    spec = tmp_path / "soak.yaml"
    spec.write_text(KILLED)
    out = tmp_path / "out"
    command = [
        *(sys.executable, "-m", "xgraph", "train", str(spec), "--backend", backend),
        *("--data", str(data), "--nproc", "2", "--out", str(out), "--checkpoint-every", "4"),
    ]
    launcher = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: (out / "latest").is_file(), 120, "the first checkpoint")
        workers = _children(launcher.pid)
        assert len(workers) == 2, workers
        victim = next(pid for pid in workers if _rank(pid, backend) == 1)
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        at = (out / "latest").read_text().strip()
        _, err = launcher.communicate(timeout=60)
        took = time.monotonic() - killed
    finally:
        launcher.kill()
    message = err.decode(errors="replace")
    print(f"killed rank 1 after {at} of 180 steps; the launcher exited {took:.1f} s later")
    assert took < 30, message
    assert launcher.returncode == 128 + signal.SIGKILL, message
    assert "rank 1 was killed by SIGKILL" in message
    # rank 0 is stopped, or has already failed its collective with the dead peer
    assert "stopped the other rank: 0" in message or "rank 0 exited with status" in message
    assert f"{out}: written:" in message and "not written: the model" in message
    for pid in workers:
        _wait_for(lambda pid=pid: not _alive(pid), 5, f"worker {pid} to be gone")
    assert not (out / f"soak{soak_train.SUFFIXES[backend]}").exists()

    resumed = subprocess.run([*command, "--resume"], cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert soak_train.missing_artifacts(out, backend, epochs=5) == ()
    metrics = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in metrics] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("where", ["a_file", "inside_data", "the_data"])
def test_a_run_folder_that_is_a_file_or_inside_the_data_is_refused(
    where: str, tmp_path: Path, run_cli
) -> None:
    data = soak_train.write_folder(tmp_path, soak_train.FOLDERS[0])
    spec = tmp_path / "soak.yaml"
    spec.write_text(soak_train.SPEC)
    out = {
        "a_file": tmp_path / "taken.txt",
        "inside_data": data / "runs",
        "the_data": data,
    }[where]
    if where == "a_file":
        out.write_text("not a folder")
    before = sorted(path.name for path in data.rglob("*"))
    result = run_cli("train", spec, "--backend", "torch", "--data", data, "--out", out)
    assert result.code == 2, result.err
    assert result.err.startswith(f"{out}: error: "), result.err
    assert "Traceback" not in result.err
    expected = "this is a file, not a folder" if where == "a_file" else "inside the training data"
    assert expected in result.err
    assert sorted(path.name for path in data.rglob("*")) == before


def test_a_failure_after_training_says_what_was_written(
    tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xgraph_torch.training import TorchTrainer

    def broken_close(self: TorchTrainer) -> None:
        raise RuntimeError("Connection closed by peer")

    monkeypatch.setattr(TorchTrainer, "close", broken_close)
    data = soak_train.write_folder(tmp_path, soak_train.FOLDERS[0])
    spec = tmp_path / "soak.yaml"
    spec.write_text(soak_train.SPEC)
    out = tmp_path / "out"
    result = run_cli("train", spec, "--backend", "torch", "--data", data, "--out", out)
    assert result.code == 1, result.err
    assert "Traceback" not in result.err
    assert result.err.splitlines()[-1] == (
        "xgraph train: error: rank 0: training finished, but leaving the data-parallel group "
        "failed (RuntimeError: Connection closed by peer); written: "
        f"{out}/soak.pt2, {out}/soak.safetensors, {out}/checkpoint-12, {out}/metrics.jsonl"
    )
    assert (out / "soak.pt2").is_file()
