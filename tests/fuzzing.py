"""What the fuzz tests share: their CPU ceiling, their hypothesis settings and the memory cap.

Examples are derandomised and never stored, so every normal run tries the same ones;
XGRAPH_FUZZ_EXAMPLES sets the number of examples per test for a longer, random run.
Memory is bounded by lowering RLIMIT_DATA's soft limit to the process's data size plus
MEMORY_BUDGET while a test runs, so an allocation beyond it fails the example that makes it
(RLIMIT_AS would count the address space torch reserves and never uses). No hypothesis
deadline: a slow or loaded machine must not fail an example.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings

# A ceiling against runaway work, not a speed test. xgraph's budgets (xgraph/budgets.py) bound
# the work any spec or file can cause: the slowest spec example took 0.06 s of CPU (Intel Xeon,
# 2026-12-03; each test prints its own), and one that escapes a budget takes minutes or hours,
# so it still fails here on any machine, however slow or loaded, while a slow one passes.
CPU_CEILING_S = 10.0
MEMORY_BUDGET = 500 << 20
LONG_RUN = os.environ.get("XGRAPH_FUZZ_EXAMPLES")


def fuzz_settings(
    examples: int, suppressed: Iterable[HealthCheck] = tuple(HealthCheck)
) -> settings:
    """`examples` per normal run, derandomised; a long run takes the environment's count."""
    return settings(
        max_examples=int(LONG_RUN) if LONG_RUN else examples,
        derandomize=not LONG_RUN,
        database=None,
        deadline=None,
        suppress_health_check=list(suppressed),
    )


@dataclass
class Slowest:
    """The slowest example of the running test: its CPU seconds and what it was."""

    seconds: float = 0.0
    example: str = ""


SLOWEST = Slowest()


@contextmanager
def cpu_ceiling(example: str) -> Iterator[None]:
    """Run one example: more than CPU_CEILING_S of CPU fails it, naming what it took."""
    start = time.process_time()
    try:
        yield
    finally:
        spent = time.process_time() - start
        if spent > SLOWEST.seconds:
            SLOWEST.seconds, SLOWEST.example = spent, example
    assert spent < CPU_CEILING_S, f"{example}: {spent:.2f} s of CPU, over {CPU_CEILING_S:g} s"


@pytest.fixture(autouse=True)
def slowest_example() -> Iterator[Slowest]:
    """Import this fixture into a test module to have each test print its slowest example's
    CPU time (`pytest -rP` shows it), the figure the ceiling is judged by."""
    SLOWEST.seconds, SLOWEST.example = 0.0, ""
    yield SLOWEST
    if SLOWEST.example:
        print(f"slowest example: {SLOWEST.seconds:.3f} s of CPU ({SLOWEST.example})")


def data_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmData in /proc/self/status")


@pytest.fixture(autouse=True)
def memory_budget() -> Iterator[None]:
    """Import this fixture into a test module to cap every test's memory there."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    resource.setrlimit(resource.RLIMIT_DATA, (data_bytes() + MEMORY_BUDGET, hard))
    yield
    resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
