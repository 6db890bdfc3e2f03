"""`--nproc N`: N local processes of the same command, each told its rank as the engines'
own launchers would tell it (torchrun's variables, or TF_CONFIG), sharing the CPU cores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from xgraph.training.replicas import local_environments

# Set for the processes this module starts, so that they do not start more.
CHILD_MARK = "XGRAPH_TRAIN_REPLICA"


def is_launched_replica() -> bool:
    return os.environ.get(CHILD_MARK) == "1"


def run_local(nproc: int, backend: str, argv: Sequence[str]) -> int:
    """Run `python -m xgraph ARGV` as `nproc` replicas; the exit status is the first failing
    one's (the others are stopped then), or 0."""
    threads = str(max(1, (os.cpu_count() or 1) // nproc))
    children = []
    for environment in local_environments(backend, nproc):
        env = {
            **os.environ,
            **environment,
            CHILD_MARK: "1",
            "OMP_NUM_THREADS": threads,
            "TF_NUM_INTRAOP_THREADS": threads,
            "TF_NUM_INTEROP_THREADS": "1",
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        }
        children.append(subprocess.Popen([sys.executable, "-m", "xgraph", *argv], env=env))
    try:
        return _wait(children)
    except KeyboardInterrupt:  # the children got the same Ctrl-C: let them finish saying so
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        return 130


def _wait(children: list[subprocess.Popen[bytes]]) -> int:
    while True:
        statuses = [child.poll() for child in children]
        failed = next((s for s in statuses if s not in (None, 0)), None)
        if failed is not None:
            for child, status in zip(children, statuses, strict=True):
                if status is None:
                    child.send_signal(signal.SIGTERM)
            for child in children:
                child.wait()
            return failed
        if all(status == 0 for status in statuses):
            return 0
        time.sleep(0.1)
