"""`xgraph tune` (issue 27): a search on the digits in both backends that prunes and whose
best spec trains again to the accuracy the study recorded; two workers on one journal file,
one killed mid-trial; every trial failing; the search checked against the spec; storage
and study errors; the dashboard reading the study."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import CliRunner
from digits import write_digits

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "examples" / "specs" / "xception_tiny.yaml"
TINY_CNN = ROOT / "examples" / "specs" / "tiny_cnn.yaml"

SEARCH = ROOT / "examples" / "specs" / "xception_tiny_search.yaml"  # docs/tuning.md's
# Two epochs of 30 steps, the first at the full learning rate (no warmup): the first epoch
# tells the pruner a learning rate too small from a good one.
TRIAL_SETS = (
    *("--set", "training.epochs=2", "--set", "training.schedule.warmup_epochs=0"),
    *("--set", "training.batch_size=16"),
)
CNN_SEARCH = f"""\
xgraph: 1
extends: {TINY_CNN}
search:
  training.optimizer.learning_rate: {{float: [1.0e-4, 1.0e-1], log: true}}
"""


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 of each digit (validation: 120 images), so that the searches fit the suite."""
    return write_digits(tmp_path_factory.mktemp("digits") / "images", per_class=60)


@pytest.fixture(scope="module")
def few_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 of each digit: trials whose time is the process's start, for the study's engine."""
    return write_digits(tmp_path_factory.mktemp("few") / "images", per_class=10)


def _spec(folder: Path, text: str, name: str = "search.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]


# Keras's trials start TensorFlow (8 s each here): fewer of them. The median pruner judges
# from the fourth trial on (n_startup_trials=3), so both searches prune.
@pytest.mark.parametrize(("backend", "trials"), [("torch", 14), ("keras", 10)])
def test_a_search_on_the_digits_prunes_and_its_best_spec_trains_again(
    backend: str, trials: int, digits: Path, tmp_path: Path, run_cli: CliRunner
) -> None:
    spec, out = SEARCH, tmp_path / "tune"
    result = run_cli(
        "tune", spec, "--backend", backend, "--data", digits, "--trials", trials, "--workers", 2,
        "--out", out, "--seed", 0, *TRIAL_SETS,
    )  # fmt: skip
    assert result.code == 0, result.err
    rows = _rows(out)
    assert len(rows) == trials and sorted(r["number"] for r in rows) == list(range(trials))
    states = [r["state"] for r in rows]
    assert "pruned" in states and "complete" in states, states
    assert result.out.count("\ntrial ") + result.out.startswith("trial ") >= trials
    for plot in ("history.png", "importances.png", "intermediate.png"):
        assert (out / plot).read_bytes()[:4] == b"\x89PNG"
    best = max((r for r in rows if r["state"] == "complete"), key=lambda r: r["val_accuracy"])
    text = (out / "best.yaml").read_text()
    assert (out / yaml.safe_load(text)["extends"]).resolve() == SEARCH
    assert f"width: {{default: {best['param:width']}}}" in text
    # trained again with the threads its trial had: the accuracy the study recorded
    threads = str(max(1, len(os.sched_getaffinity(0)) // 2))
    again = subprocess.run(
        [sys.executable, "-m", "xgraph", "train", str(out / "best.yaml"), "--backend", backend,
         "--data", str(digits), "--out", str(tmp_path / "again"), *TRIAL_SETS, "--no-export"],
        capture_output=True, text=True, check=False,
        env={**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
             "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1"},
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    last = json.loads((tmp_path / "again" / "metrics.jsonl").read_text().splitlines()[-1])
    print(f"{backend}: study {best['val_accuracy']:.4f}, trained again {last['val_accuracy']:.4f}")
    assert abs(last["val_accuracy"] - best["val_accuracy"]) <= 0.01
    assert (out / "best.safetensors").is_file()
    diff = run_cli("diff", spec, out / "best.yaml")
    assert f"width: 1.0 -> {best['param:width']}" in diff.out or best["param:width"] == 1.0


def _tune(spec: Path, data: Path, out: Path, *more: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "xgraph", "tune", str(spec), "--backend", "torch", "--data",
         str(data), "--out", str(out), "--set", "training.epochs=1", *more],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _training(out: Path, pid: int) -> int | None:
    """The number of a trial the worker process `pid` is training (its first epoch
    under way), if any."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if not (out / "study.journal").is_file():
        return None
    storage = JournalStorage(JournalFileBackend(str(out / "study.journal")))
    try:
        study = optuna.load_study(study_name="tiny_cnn", storage=storage)
    except KeyError:
        return None
    for trial in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
        log = out / "trials" / f"{trial.number:04d}" / "train.log"
        if str(trial.user_attrs.get("worker", "")).endswith(f":{pid}") and log.is_file():
            return trial.number
    return None


def test_two_workers_share_a_journal_and_one_killed_leaves_a_failed_trial(
    few_digits: Path, tmp_path: Path
) -> None:
    spec, out = _spec(tmp_path, CNN_SEARCH), tmp_path / "tune"
    first = _tune(spec, few_digits, out, "--trials", "12", "--workers", "2")
    second = _tune(spec, few_digits, out, "--trials", "12")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _training(out, second.pid) is None:
        time.sleep(0.2)
    assert _training(out, second.pid) is not None, "the second worker trained no trial"
    second.send_signal(signal.SIGKILL)  # mid-trial
    second.wait()
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    rows = _rows(out)
    stopped = [r for r in rows if "stopped" in r["reason"]]
    counted = [r for r in rows if "stopped" not in r["reason"]]
    assert len(stopped) == 1 and stopped[0]["state"] == "fail", rows
    assert len(counted) == 12 and all(r["state"] in ("complete", "pruned") for r in counted)
    assert len({r["number"] for r in rows}) == len(rows)
    assert "its worker stopped; another runs in its place" in stdout
    # run again: the study is whole, nothing more is trained
    again = _tune(spec, few_digits, out, "--trials", "12")
    stdout, _ = again.communicate(timeout=120)
    assert again.returncode == 0 and "\ntrial " not in stdout and len(_rows(out)) == 13


def test_a_study_whose_every_trial_fails_exits_1(
    few_digits: Path, tmp_path: Path, run_cli: CliRunner
) -> None:
    spec, out = _spec(tmp_path, CNN_SEARCH), tmp_path / "tune"
    result = run_cli(
        "tune", spec, "--backend", "torch", "--data", few_digits, "--trials", 2, "--out", out,
        "--set", "classes=3",
    )  # fmt: skip
    assert result.code == 1
    assert "2 trials (2 fail)" in result.out
    assert "error: no trial completed; the first failure:" in result.err
    assert "10 class folders, but the model 'tiny_cnn'" in result.err  # against its 3
    assert not (out / "best.yaml").exists()
    assert _dashboard_studies(out / "study.journal") == ["tiny_cnn"]


def _dashboard_studies(storage: Path | str) -> list[str]:
    """The studies `optuna-dashboard STORAGE` (the command the docs give) lists."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [str(Path(sys.executable).parent / "optuna-dashboard"), str(storage),
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                url = f"http://127.0.0.1:{port}/api/studies"
                with urllib.request.urlopen(url, timeout=5) as answer:
                    summaries = json.loads(answer.read())["study_summaries"]
                    return [study["study_name"] for study in summaries]
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("depth: {choice: [1, 2]}", "search: 'depth' is not a parameter of 'xception_tiny'"),
        ("training.weight_decay: {float: [-1.0, 0.0]}", "may try -1.0, which the spec refuses"),
        ("width: {choice: []}", "search: 'width': 'choice': List should have at least 1 item"),
        ("classes: {float: [2.0, 3.0]}", "may try 2.0, which the spec refuses"),
        ("training.nope: {choice: [1]}", "may try 1, which the spec refuses"),
    ],
)
def test_a_search_the_spec_cannot_take_is_a_located_error(
    entry: str, message: str, tmp_path: Path, run_cli: CliRunner
) -> None:
    spec = _spec(tmp_path, f"xgraph: 1\nextends: {TINY}\nsearch:\n  {entry}\n")
    result = run_cli("tune", spec, "--backend", "torch", "--data", tmp_path, "--trials", 1)
    assert result.code == 2
    assert result.err.startswith(f"{spec}:4:"), result.err
    assert message in result.err and "Traceback" not in result.err


def test_storage_and_study_errors(few_digits: Path, tmp_path: Path, run_cli: CliRunner) -> None:
    spec = _spec(tmp_path, CNN_SEARCH)
    url = "postgresql://tuner:secret@127.0.0.1:9/nowhere"
    args = ("tune", spec, "--backend", "torch", "--data", few_digits, "--trials", 1)
    result = run_cli(*args, "--storage", url)
    assert result.code == 2
    assert "error: cannot use the storage postgresql://tuner:***@127.0.0.1:9/nowhere" in result.err
    assert "secret" not in result.err
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    journal = tmp_path / "shared.journal"
    study = optuna.create_study(
        study_name="tiny_cnn", storage=JournalStorage(JournalFileBackend(str(journal)))
    )
    study.set_user_attr("xgraph_search", json.dumps({"width": {"choice": [1]}}))
    result = run_cli(*args, "--storage", journal)
    assert result.code == 2
    assert "error: the study 'tiny_cnn' exists with another search" in result.err
    result = run_cli(*args, "--set", "search.x=1")
    assert result.code == 2 and "--set cannot change the search section" in result.err
    plain = run_cli("tune", TINY_CNN, "--backend", "torch", "--data", few_digits, "--trials", 1)
    assert plain.code == 2 and "error: the spec has no 'search:' section" in plain.err


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


def _as_postgres(*argv: str | Path) -> list[str]:
    words = [str(a) for a in argv]
    return words if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--", *words]


@pytest.fixture
def postgres_url() -> object:
    """A PostgreSQL server of its own on the loopback (Debian's package; it refuses to run
    as root, so it runs as its own user), with an empty database: its URL."""
    import pwd
    import shutil
    import socket
    import tempfile

    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL's server is not installed (Debian's postgresql package)")
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no 'postgres' user to run PostgreSQL's server as")
    if os.geteuid() not in (0, owner.pw_uid):
        pytest.skip("PostgreSQL's server runs as its own user: switching to it needs root")
    folder = Path(tempfile.mkdtemp(prefix="xgraph-pg-"))
    os.chmod(folder, 0o755)
    os.chown(folder, owner.pw_uid, owner.pw_gid)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = folder / "data"
    run = {"check": True, "capture_output": True, "timeout": 120}
    subprocess.run(
        _as_postgres(bin_dir / "initdb", "-D", data, "-A", "trust", "-U", "postgres"), **run
    )  # type: ignore[call-overload]
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    start = _as_postgres(
        bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", folder / "log", "-w", "start"
    )
    subprocess.run(start, **run)  # type: ignore[call-overload]
    try:
        create = [
            bin_dir / "createdb",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "xgraph",
        ]
        subprocess.run(_as_postgres(*create), **run)  # type: ignore[call-overload]
        yield f"postgresql://postgres@127.0.0.1:{port}/xgraph"
    finally:
        stop = _as_postgres(bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop")
        subprocess.run(stop, capture_output=True, timeout=60, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def test_postgresql_studies_are_shared_between_workers(
    postgres_url: str, few_digits: Path, tmp_path: Path
) -> None:
    """Two `xgraph tune` processes, each with its own OUT as on two machines, one study in
    a PostgreSQL database: its trials between them, each counted once."""
    import optuna

    spec = _spec(tmp_path, CNN_SEARCH)
    more = ("--trials", "4", "--study", "shared", "--storage", postgres_url)
    workers = [_tune(spec, few_digits, tmp_path / f"machine{k}", *more) for k in (1, 2)]
    for worker in workers:
        _, stderr = worker.communicate(timeout=300)
        assert worker.returncode == 0, stderr
    study = optuna.load_study(study_name="shared", storage=postgres_url)
    trials = study.get_trials()
    assert len(trials) == 4 and len({t.number for t in trials}) == 4
    assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both machines trained
    assert _dashboard_studies(postgres_url) == ["shared"]
