"""Processes sharing the CPUs take a share each (xgraph.threads): the replicas of `xgraph train
--nproc` and pytest-xdist's workers, whose engines would otherwise spin against each other."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xgraph import pytest_plugin
from xgraph.threads import session_threads, share_environment, take_share, usable_cpus

ROOT = Path(__file__).resolve().parent.parent


def test_each_of_n_processes_gets_its_share_and_never_none() -> None:
    cpus = usable_cpus()
    assert share_environment(1)["OMP_NUM_THREADS"] == str(cpus)
    two = share_environment(2)
    assert two == {
        "OMP_NUM_THREADS": str(max(1, cpus // 2)),
        "MKL_NUM_THREADS": str(max(1, cpus // 2)),
        "TF_NUM_INTRAOP_THREADS": str(max(1, cpus // 2)),
        "TF_NUM_INTEROP_THREADS": "1",
    }
    assert share_environment(cpus * 4)["OMP_NUM_THREADS"] == "1"


def test_what_the_user_set_is_kept() -> None:
    environ = {"OMP_NUM_THREADS": "3", "PATH": "/bin"}
    taken = take_share(environ, 2)
    assert environ["OMP_NUM_THREADS"] == "3"
    assert "OMP_NUM_THREADS" not in taken
    assert environ["TF_NUM_INTEROP_THREADS"] == "1" == taken["TF_NUM_INTEROP_THREADS"]


@pytest.mark.parametrize(
    ("value", "threads"), [("2", 2), ("1", 1), ("", 0), ("0", 0), ("four", 0), ("-1", 0)]
)
def test_onnx_runtime_takes_omp_num_threads_or_its_own_choice(value: str, threads: int) -> None:
    assert session_threads({"OMP_NUM_THREADS": value} if value else {}) == threads


def test_this_suites_workers_keep_to_their_share_in_every_engine() -> None:
    """The plugin's hook at work: this process is one of the run's workers (`make test` runs
    two), and torch and ONNX Runtime run with its share, or with what the user set."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers is None:
        pytest.skip("the suite runs without pytest-xdist workers (-n 0): nothing is shared")
    share = int(os.environ["OMP_NUM_THREADS"])  # the plugin's, or the user's if they set it
    if "OMP_NUM_THREADS" in pytest_plugin.taken_share:
        assert share == int(share_environment(int(workers))["OMP_NUM_THREADS"])
    import torch

    from xgraph.api import load
    from xgraph.backend import load_backend

    assert torch.get_num_threads() == share
    model = load_backend("onnx").build(load(ROOT / "examples/specs/xception_tiny.yaml"))
    assert model.session.get_session_options().intra_op_num_threads == share
