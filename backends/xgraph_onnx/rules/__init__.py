"""The ONNX backend's rule for every built-in op, one module per op family as in
`xgraph.ops`; registered under the `xgraph.op_rules` entry-point group as `onnx`."""

from __future__ import annotations

from xgraph_onnx.rules import activation, conv, dense, merge, norm, pool, preprocess, reshape
from xgraph_onnx.rules.base import OnnxRule

RULES: dict[str, OnnxRule] = {
    op: rule
    for family in (reshape, preprocess, conv, norm, activation, pool, dense, merge)
    for op, rule in family.RULES.items()
}

__all__ = ["RULES", "OnnxRule"]
