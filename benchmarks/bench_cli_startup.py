"""Cold start of `xgraph validate specs/xception.yaml`, against a bare interpreter start.

Run: `.venv/bin/python benchmarks/bench_cli_startup.py`. The target is at most 0.5 s; the
ratio to `python -c pass`, measured in the same run, shows what xgraph itself adds.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

RUNS = 7


def median_wall(command: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    bare = median_wall([sys.executable, "-c", "pass"])
    validate = median_wall([sys.executable, "-m", "xgraph", "validate", "specs/xception.yaml"])
    print(f"python -c pass                        {bare:6.3f} s   1.00")
    print(
        f"xgraph validate specs/xception.yaml   {validate:6.3f} s   {validate / bare:5.2f}"
        f"   (target: at most 0.5 s)"
    )


if __name__ == "__main__":
    main()
