"""The input pipeline: batches decoded by worker threads while the current step trains.

Threads, not processes: Pillow releases the GIL while it decodes and resizes (two threads
decode 1.8x as fast as one here), so a thread pool needs no pickling, no shared memory and no
start-up, and works the same under every backend and launcher. Each image's pixels are a
function of (seed, epoch, image) alone (xgraph.training.images), and every batch is assembled
in its rows' order, so the batches are the same bit for bit whatever the number of workers.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from xgraph.training.images import ImageLoader

# Batches decoded ahead of the one training: one would do if every batch took as long to
# load; two absorb the slow ones (a large JPEG, a cold file).
PREFETCH = 2


def machine_cores() -> int:
    """The cores this process may run on (a container's share, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def default_workers() -> int:
    """One loading thread per core, the cores shared among the processes training on this
    machine (LOCAL_WORLD_SIZE: torchrun's, and `--nproc`'s for both backends)."""
    try:
        local_processes = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        local_processes = 1
    return max(1, machine_cores() // local_processes)


@dataclass
class _Pending:
    """A batch being loaded: its array and the workers' parts of it."""

    images: np.ndarray
    parts: list[Future[None]]

    def result(self) -> np.ndarray:
        for part in self.parts:
            part.result()  # a worker's DataError is raised here, in the training thread
        return self.images


class Pipeline:
    """Loads the batches of a plan ahead of their use: `workers` threads (0: in the calling
    thread, one batch at a time, as the simplest loop would), PREFETCH batches ahead. Use it as
    a context manager: leaving stops the workers, whatever is still queued."""

    def __init__(self, loader: ImageLoader, workers: int, prefetch: int = PREFETCH) -> None:
        if workers < 0:
            raise ValueError(f"workers must be 0 or more, not {workers}")
        self.loader = loader
        self.workers = workers
        self.prefetch = max(1, prefetch)
        self._pool = ThreadPoolExecutor(workers, "xgraph-data") if workers else None

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def batches(self, plan: Sequence[np.ndarray], epoch: int | None = None) -> Iterator[np.ndarray]:
        """float32 (N, H, W, C) images for each batch of indices in `plan`, in order;
        augmented for `epoch` when it is given and the loader augments."""
        if self._pool is None:
            for indices in plan:
                yield self.loader.load(indices, epoch)
            return
        queued: deque[_Pending] = deque()
        upcoming = iter(plan)
        try:
            for indices in upcoming:
                queued.append(self._submit(indices, epoch))
                if len(queued) > self.prefetch:
                    yield queued.popleft().result()
            while queued:
                yield queued.popleft().result()
        finally:  # the consumer stopped early (an error, Ctrl-C): drop what is queued
            for pending in queued:
                for part in pending.parts:
                    part.cancel()

    def _submit(self, indices: np.ndarray, epoch: int | None) -> _Pending:
        assert self._pool is not None
        loader = self.loader
        images = np.empty((len(indices), loader.height, loader.width, loader.channels), np.float32)
        parts = []
        for rows in np.array_split(
            np.arange(len(indices)), max(1, min(self.workers, len(indices)))
        ):
            if rows.size:
                part = slice(int(rows[0]), int(rows[-1]) + 1)
                parts.append(
                    self._pool.submit(loader.load_into, images[part], indices[part], epoch)
                )
        return _Pending(images, parts)
