"""Compile time per node, from 1,000 to 100,000 nodes: the front end must stay linear.

Run: `.venv/bin/python benchmarks/bench_compile_scaling.py`. Each size is a spec of one
residual block (conv, BatchNorm, ReLU, add, ReLU) repeated, compiled in-process from its
text (parse, expansion, attributes, graph checks, shapes and counts) with the node and
step budgets raised to fit. It prints the CPU time per node at each size and its ratio to
the smallest size: a ratio near 1 is linear. The default node budget (`nodes` in
xgraph/budgets.py) is chosen so that a spec at the limit validates within about a second.
"""

from __future__ import annotations

import gc
import time

from xgraph.api import loads
from xgraph.budgets import DEFAULT_BUDGETS, Budgets

SIZES = (1_000, 5_000, 20_000, 50_000, 100_000)
NODES_PER_UNIT = 5
RUNS = 3


def spec_text(units: int) -> str:
    """A spec of `units` residual blocks, five nodes each, plus its input."""
    return f"""\
xgraph: 1
name: scaling
params:
  width: {{type: int, default: 8}}
inputs:
  - {{name: x, shape: [8, 8, 8]}}
blocks:
  unit:
    params:
      filters: {{type: int}}
    nodes:
      - {{name: "${{name}}_conv", op: conv2d, filters: "${{filters}}", kernel_size: 3,
         padding: same, use_bias: false}}
      - {{name: "${{name}}_bn", op: batch_norm}}
      - {{name: "${{name}}_relu", op: activation, activation: relu}}
      - {{name: "${{name}}_add", op: add, inputs: ["${{name}}_relu", "${{input}}"]}}
      - {{name: "${{name}}_out", op: activation, activation: relu}}
nodes:
  - {{use: unit, name: "unit${{i}}", repeat: {units}, args: {{filters: "${{width}}"}}}}
"""


def cpu_seconds(text: str, budgets: Budgets) -> float:
    """The least CPU time of a few compilations (the least is the one others disturbed least)."""
    best = float("inf")
    for _ in range(RUNS):
        gc.collect()
        started = time.process_time()
        loads(text, budgets=budgets)
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    budgets = Budgets(nodes=max(SIZES) + 1, expansion_steps=100 * max(SIZES))
    loads(spec_text(10), budgets=budgets)  # warm: op registry, pydantic schemas
    print(f"default node budget: {DEFAULT_BUDGETS.nodes:,}")
    print(f"{'nodes':>8}  {'CPU s':>7}  {'us/node':>8}  {'ratio':>5}")
    first: float | None = None
    for size in SIZES:
        seconds = cpu_seconds(spec_text(size // NODES_PER_UNIT), budgets)
        per_node = seconds / (size + 1) * 1e6
        first = first or per_node
        print(f"{size + 1:>8,}  {seconds:7.3f}  {per_node:8.1f}  {per_node / first:5.2f}")


if __name__ == "__main__":
    main()
