"""The keras backend's rule for every built-in op, one module per op family as in
`xgraph.ops`; registered under the `xgraph.op_rules` entry-point group as `keras`, as a
plugin's Keras rules are."""

from __future__ import annotations

from xgraph_keras.rules import activation, conv, dense, merge, norm, pool, preprocess, reshape
from xgraph_keras.rules.base import KerasRule

RULES: dict[str, KerasRule] = {
    op: rule
    for family in (reshape, preprocess, conv, norm, activation, pool, dense, merge)
    for op, rule in family.RULES.items()
}

__all__ = ["RULES", "KerasRule"]
