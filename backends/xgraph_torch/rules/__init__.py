"""The torch backend's rule for every built-in op, one module per op family as in
`xgraph.ops`; registered under the `xgraph.op_rules` entry-point group as `torch`, as a
plugin's torch rules are."""

from __future__ import annotations

from xgraph_torch.rules import activation, conv, dense, merge, norm, pool, preprocess, reshape
from xgraph_torch.rules.base import TorchRule

RULES: dict[str, TorchRule] = {
    op: rule
    for family in (reshape, preprocess, conv, norm, activation, pool, dense, merge)
    for op, rule in family.RULES.items()
}

__all__ = ["RULES", "TorchRule"]
