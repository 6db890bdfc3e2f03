"""The warning that a run is too short for BatchNorm's moving statistics to settle: a pure
rule over the analysed graph and the planned steps, checked without training."""

from __future__ import annotations

from xgraph.api import loads
from xgraph.training.settle import LEFT_OVER, settle_warning, steps_to_settle, unsettled

SPEC = """
xgraph: 1
name: bn
inputs: [{name: x, shape: [8, 8, 3]}]
nodes:
  - {name: c1, op: conv2d, filters: 4, kernel_size: 3}
  - {name: b1, op: batch_norm}
  - {name: c2, op: conv2d, filters: 4, kernel_size: 3}
  - {name: b2, op: batch_norm}
  - {name: c3, op: conv2d, filters: 4, kernel_size: 3}
  - {name: b3, op: batch_norm, momentum: 0.9}
"""


def test_settling_takes_about_seven_time_constants() -> None:
    assert steps_to_settle(0.99) == 688  # 0.99 ** 688 < 0.001 < 0.99 ** 687
    assert 0.99**688 <= LEFT_OVER < 0.99**687
    assert steps_to_settle(0.9) == 66
    assert steps_to_settle(0.0) == 1


def test_nodes_are_grouped_by_momentum_largest_first() -> None:
    groups = unsettled(loads(SPEC), 22)
    assert [(g.momentum, g.nodes) for g in groups] == [(0.99, 2), (0.9, 1)]
    assert abs(groups[0].left - 0.99**22) < 1e-12


def test_the_warning_names_the_momentum_the_count_and_the_fix() -> None:
    text = settle_warning(loads(SPEC), 22, 11)
    assert text is not None
    first, hint = text.splitlines()
    assert first.startswith("warning: BatchNorm statistics will not settle: ")
    assert "after 22 optimizer steps 2 batch_norm nodes" in first
    assert "2 batch_norm nodes with momentum 0.99 still keep 80%" in first
    assert "1 batch_norm node with momentum 0.9 still keeps 10%" in first
    assert "defaults: {batch_norm: {momentum: 0.7}}" in hint  # the largest that settles in 22
    assert "--epochs 63" in hint  # 688 steps at 11 a step


def test_enough_steps_say_nothing() -> None:
    assert settle_warning(loads(SPEC), 688, 10) is None
    assert settle_warning(loads(SPEC), 687, 10) is not None


def test_a_spec_without_batch_norm_says_nothing() -> None:
    no_bn = "\n".join(line for line in SPEC.splitlines() if "batch_norm" not in line)
    assert settle_warning(loads(no_bn), 1, 1) is None
