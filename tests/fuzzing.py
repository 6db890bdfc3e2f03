"""What the fuzz tests share: their budgets, their hypothesis settings and the memory cap.

Examples are derandomised and never stored, so every normal run tries the same ones;
XGRAPH_FUZZ_EXAMPLES sets the number of examples per test for a longer, random run.
Memory is bounded by lowering RLIMIT_DATA's soft limit to the process's data size plus
MEMORY_BUDGET while a test runs, so an allocation beyond it fails the example that makes it
(RLIMIT_AS would count the address space torch reserves and never uses).
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterable, Iterator

import pytest
from hypothesis import HealthCheck, settings

CPU_BUDGET_S = 2.0
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
