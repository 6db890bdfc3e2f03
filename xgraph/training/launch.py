"""`--nproc N`: N local processes of the same command, each told its rank as the engines'
own launchers would tell it (torchrun's variables, or TF_CONFIG), sharing the CPU cores.

The launcher watches them as torchrun does: when one dies, it names the rank, its exit status
and the last lines it wrote, stops the others (SIGTERM, then SIGKILL after a grace period) and
exits non-zero. Each replica's standard error passes through the launcher (which keeps the
tail); a replica dies with the launcher (Linux's parent-death signal), so none is orphaned.
"""

from __future__ import annotations

import collections
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from xgraph.threads import share_environment
from xgraph.training.progress import LIVE_MARK
from xgraph.training.replicas import local_environments

# Set for the processes this module starts, so that they do not start more.
CHILD_MARK = "XGRAPH_TRAIN_REPLICA"
TAIL_LINES = 20
# After a replica died the others have nothing left to save (checkpoints are written whole or
# not at all), and TensorFlow catches SIGTERM in its workers (measured: a Keras replica blocked
# in a collective with a dead peer outlived it by the whole grace): a short grace, then SIGKILL.
STOP_GRACE_SECONDS = 3.0
POLL_SECONDS = 0.1
PR_SET_PDEATHSIG = 1


def is_launched_replica() -> bool:
    return os.environ.get(CHILD_MARK) == "1"


@dataclass
class Replica:
    """One started process, with the last lines of its standard error."""

    rank: int
    process: subprocess.Popen[bytes]
    tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=TAIL_LINES)
    )
    reader: threading.Thread | None = None


def _death_signal() -> Callable[[], None] | None:
    """What a child runs before exec to get SIGKILL when the launcher dies, however it dies
    (Linux's prctl); None elsewhere. libc is opened here, in the parent: between fork and
    exec the child only calls it."""
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def die_with_parent() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    return die_with_parent


def _forward(source: BinaryIO, sink: BinaryIO, tail: collections.deque[str]) -> None:
    """Copy a replica's standard error to ours as it comes (progress bars redraw without a
    newline), keeping its last lines for the report of a failure."""
    pending = b""
    while chunk := os.read(source.fileno(), 65536):
        sink.write(chunk)
        sink.flush()
        *lines, pending = (pending + chunk).replace(b"\r", b"\n").split(b"\n")
        tail.extend(line.decode(errors="replace") for line in lines if line.strip())
    if pending.strip():
        tail.append(pending.decode(errors="replace"))


def start_replicas(nproc: int, backend: str, argv: Sequence[str]) -> list[Replica]:
    """`python -m xgraph ARGV` as `nproc` replicas, each with its engine's variables."""
    share = share_environment(nproc)
    live = {LIVE_MARK: "1"} if sys.stderr.isatty() else {}  # the chief draws the bar
    before_exec = _death_signal()
    replicas = []
    for rank, environment in enumerate(local_environments(backend, nproc)):
        env = {
            **os.environ,
            **environment,
            **(live if rank == 0 else {}),
            CHILD_MARK: "1",
            **share,
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "xgraph", *argv],
            env=env,
            stderr=subprocess.PIPE,
            preexec_fn=before_exec,
        )
        replicas.append(Replica(rank, process))
    for replica in replicas:  # threads only once every process is started: fork with none
        assert replica.process.stderr is not None
        replica.reader = threading.Thread(
            target=_forward,
            args=(replica.process.stderr, sys.stderr.buffer, replica.tail),
            daemon=True,
        )
        replica.reader.start()
    return replicas


def describe_status(status: int) -> str:
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"was killed by {name}"
    return f"exited with status {status}"


def exit_status(status: int) -> int:
    """A shell's exit status for a child's: 128 + N for a child killed by signal N."""
    return 128 - status if status < 0 else status


def stop(
    replicas: Sequence[Replica], grace: float = STOP_GRACE_SECONDS, terminate: bool = True
) -> None:
    """SIGTERM to every replica still running (unless `terminate` is false: they were already
    told, by the terminal's Ctrl-C), SIGKILL to those still running after `grace`."""
    for replica in replicas:
        if terminate and replica.process.poll() is None:
            replica.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for replica in replicas:
        try:
            replica.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            replica.process.kill()
            replica.process.wait()
    for replica in replicas:
        if replica.reader is not None:
            replica.reader.join(timeout=5)


def _report(culprit: Replica, failed: Sequence[Replica], running: Sequence[Replica]) -> None:
    """Which rank failed and how, with its last lines; which others failed with it (usually
    as a consequence: a collective whose peer died), and which were stopped."""
    status = culprit.process.returncode
    lines = [f"xgraph train: rank {culprit.rank} {describe_status(status)}"]
    if culprit.tail:
        lines.append(f"  its last lines (rank {culprit.rank}):")
        lines += [f"    {line}" for line in culprit.tail]
    for other in failed:
        if other is not culprit:
            lines.append(f"  rank {other.rank} {describe_status(other.process.returncode)} too")
    if running:
        ranks = ", ".join(str(replica.rank) for replica in running)
        lines.append(f"  stopped the other rank{'s' if len(running) > 1 else ''}: {ranks}")
    print("\n".join(lines), file=sys.stderr)


def _culprit(failed: Sequence[Replica]) -> Replica:
    """The failure to blame when several are seen at once: a death by signal before a
    non-zero exit (a replica whose peer was killed fails its next collective), then by rank."""
    return min(failed, key=lambda replica: (replica.process.returncode >= 0, replica.rank))


def wait(replicas: Sequence[Replica], on_failure: Callable[[], None] | None = None) -> int:
    """0 once every replica exits 0; else, at the first failure, stop the rest, say which
    rank failed and how, and return its status (128 + N for signal N)."""
    while True:
        statuses = [replica.process.poll() for replica in replicas]
        failed = [r for r, s in zip(replicas, statuses, strict=True) if s not in (None, 0)]
        if failed:
            running = [r for r, s in zip(replicas, statuses, strict=True) if s is None]
            culprit = _culprit(failed)
            stop(replicas)
            _report(culprit, failed, running)
            if on_failure is not None:
                on_failure()
            return exit_status(culprit.process.returncode)
        if all(status == 0 for status in statuses):
            return 0  # run_local's `stop` joins the readers
        time.sleep(POLL_SECONDS)


def run_local(
    nproc: int,
    backend: str,
    argv: Sequence[str],
    on_failure: Callable[[], None] | None = None,
) -> int:
    """Run `python -m xgraph ARGV` as `nproc` replicas; the exit status is 0, or the first
    failing one's (the others are stopped then). `on_failure` runs after a failure is
    reported (the CLI says what the run's folder holds)."""
    replicas = start_replicas(nproc, backend, argv)
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        return wait(replicas, on_failure)
    except KeyboardInterrupt:  # the children got the same Ctrl-C: let them finish saying so
        stop(replicas, grace=30.0, terminate=False)
        return 130
    finally:  # a SIGTERM to the launcher, or a bug in it: no replica outlives it
        stop(replicas)
        signal.signal(signal.SIGTERM, previous)


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
