"""The threads each process's engines take when several processes share the CPUs (the
replicas of `xgraph train --nproc`, pytest-xdist's workers).

More threads than cores is slow, not merely no faster: OpenMP's waiting threads spin against
the other process's, and a step takes several times as long (measured on 2 cores: an epoch of
examples/specs/xception_tiny.yaml in torch 3.5 s alone, 25 s beside one busy process). Each
process is given its share through the variables the engines read when they start: torch and
MKL (OMP_NUM_THREADS, MKL_NUM_THREADS), TensorFlow (TF_NUM_INTRAOP_THREADS,
TF_NUM_INTEROP_THREADS), and ONNX Runtime, which reads none, through xgraph's ONNX backend
(`session_threads`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, which a container or taskset narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def share_environment(processes: int) -> dict[str, str]:
    """The variables that give one of `processes` processes its share of the CPUs."""
    threads = str(max(1, usable_cpus() // processes))
    return {
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "TF_NUM_INTRAOP_THREADS": threads,
        "TF_NUM_INTEROP_THREADS": "1",
    }


def take_share(environ: MutableMapping[str, str], processes: int) -> dict[str, str]:
    """Set the share of one of `processes` processes in `environ`, before any engine is
    imported, leaving each variable the user set as it is. Returns what was set."""
    taken = {
        key: value for key, value in share_environment(processes).items() if key not in environ
    }
    environ.update(taken)
    return taken


def session_threads(environ: Mapping[str, str] = os.environ) -> int:
    """ONNX Runtime's intra-op threads: OMP_NUM_THREADS where it is set, as torch reads it;
    0 (ONNX Runtime's own choice, one per core) otherwise."""
    value = environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else 0
