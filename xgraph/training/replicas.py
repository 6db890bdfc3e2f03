"""Who this process is in a data-parallel run, read from the engines' own launchers' variables:
torchrun's RANK and WORLD_SIZE (with MASTER_ADDR and MASTER_PORT) for torch, TF_CONFIG for
tf.distribute; and the same variables made up for `--nproc N` local processes."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Replicas:
    """This process's rank among `world_size` processes, each training one replica."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_chief(self) -> bool:
        """The process that writes checkpoints, metrics and the progress bar."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def share(self, rows: int) -> slice:
        """This replica's rows of a batch of `rows`: equal shares, the first ones one row
        longer where `rows` does not divide (validation's last batch)."""
        base, extra = divmod(rows, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (1 if self.rank < extra else 0))


def from_environment(backend: str, environ: Mapping[str, str] | None = None) -> Replicas:
    """The replicas a launcher set up for `backend`, or one process when none did."""
    environ = os.environ if environ is None else environ
    if backend == "keras" and environ.get("TF_CONFIG"):
        config = json.loads(environ["TF_CONFIG"])
        workers = config.get("cluster", {}).get("worker", [])
        task = config.get("task", {})
        return Replicas(rank=int(task.get("index", 0)), world_size=max(1, len(workers)))
    if backend == "torch" and "WORLD_SIZE" in environ:
        return Replicas(rank=int(environ.get("RANK", "0")), world_size=int(environ["WORLD_SIZE"]))
    return Replicas()


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def local_environments(backend: str, nproc: int) -> list[dict[str, str]]:
    """The variables each of `nproc` processes on this machine needs, as torchrun or a
    TF_CONFIG cluster would give them (to add to os.environ)."""
    if backend == "torch":
        (port,) = _free_ports(1)
        return [
            {
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port),
                "RANK": str(rank),
                "LOCAL_RANK": str(rank),
                "WORLD_SIZE": str(nproc),
                "LOCAL_WORLD_SIZE": str(nproc),
            }
            for rank in range(nproc)
        ]
    if backend == "keras":
        workers = [f"127.0.0.1:{port}" for port in _free_ports(nproc)]
        return [
            {
                "TF_CONFIG": json.dumps(
                    {"cluster": {"worker": workers}, "task": {"type": "worker", "index": rank}}
                ),
                # torchrun's name for the processes sharing this machine (its cores)
                "LOCAL_WORLD_SIZE": str(nproc),
            }
            for rank in range(nproc)
        ]
    raise ValueError(f"backend '{backend}' has no data-parallel training")
