"""Whether a run is long enough for BatchNorm's moving statistics to forget their start.

Keras updates them as `moving = m * moving + (1 - m) * batch`, so after `n` steps the initial
values (mean 0, variance 1) still weigh `m ** n`. Inference (validation, the exported model)
uses these statistics: while that weight matters, a model that trains well scores as if
untrained, and nothing else says why. It matters long after it looks small, because a
layer's real variance can be far below 1: a half-width Xception on 10 classes of digits,
momentum 0.9 over 32 steps (3% left), scored chance (0.10) on validation at 0.99 training
accuracy, where momentum 0.5 scored 0.90 (tests/test_first_day.py's setting). So the rule
warns while more than `LEFT_OVER` = 0.1% remains: about seven time constants
(`n = ln(1000) / (1 - m)`: 66 steps at 0.9, 688 at Keras's default 0.99).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from xgraph.ir.analysis import AnalysedGraph

LEFT_OVER = 0.001
# Round momenta to suggest, the largest first: the fix names the largest that settles.
_SUGGESTED = (0.99, 0.95, 0.9, 0.8, 0.7, 0.5)


@dataclass(frozen=True)
class Unsettled:
    """The batch_norm nodes of one momentum whose statistics keep `left` of their start."""

    momentum: float
    nodes: int
    left: float


def steps_to_settle(momentum: float) -> int:
    """The fewest steps after which at most LEFT_OVER of the initial statistics remain."""
    if momentum <= 0:
        return 1
    return math.ceil(math.log(LEFT_OVER) / math.log(momentum))


def unsettled(analysed: AnalysedGraph, steps: int) -> list[Unsettled]:
    """Per momentum (largest first), the batch_norm nodes that `steps` steps leave unsettled."""
    momenta = Counter(
        float(node.attrs.momentum)  # type: ignore[attr-defined]
        for node in analysed.graph.nodes
        if node.op == "batch_norm"
    )
    return [
        Unsettled(momentum, count, momentum**steps)
        for momentum, count in sorted(momenta.items(), reverse=True)
        if steps < steps_to_settle(momentum)
    ]


def _share(left: float) -> str:
    return f"{left:.0%}" if left >= 0.01 else f"{left:.1%}"


def _nodes(group: Unsettled) -> str:
    return f"{group.nodes} batch_norm node{'s' if group.nodes != 1 else ''}"


def settle_warning(analysed: AnalysedGraph, steps: int, steps_per_epoch: int) -> str | None:
    """The warning `xgraph train` prints before its first step, or None when `steps` optimizer
    steps (`steps_per_epoch` to an epoch) let every batch_norm node's statistics settle."""
    groups = unsettled(analysed, steps)
    if not groups:
        return None
    which = "; ".join(
        f"{_nodes(group)} with momentum {group.momentum:g} still "
        f"{'keeps' if group.nodes == 1 else 'keep'} {_share(group.left)}"
        for group in groups
    )
    fitting = [m for m in _SUGGESTED if steps >= steps_to_settle(m)]
    slowest = max(group.momentum for group in groups)
    epochs = math.ceil(steps_to_settle(slowest) / max(steps_per_epoch, 1))
    fixes = [f"at least {epochs} epochs (--epochs {epochs})"]
    if fitting:
        momentum = f"{fitting[0]:g}"
        fixes.insert(
            0,
            f"a momentum of {momentum}: 'defaults: {{batch_norm: {{momentum: {momentum}}}}}' "
            f"in the spec, or --set defaults.batch_norm.momentum={momentum}",
        )
    return (
        f"warning: BatchNorm statistics will not settle: validation and the exported model use "
        f"the moving statistics, and after {steps} optimizer step{'s' if steps != 1 else ''} "
        f"{which} of their initial values (mean 0, variance 1), which can dwarf a layer's "
        f"real variance (settled: under {LEFT_OVER:.1%})\n"
        f"  hint: {'; or '.join(fixes)}"
    )
