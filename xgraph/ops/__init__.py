"""The op registry: every op xgraph knows, each defined once in its family's module."""

from __future__ import annotations

from xgraph.ops import activation, conv, dense, merge, norm, pool, reshape
from xgraph.ops.base import Attrs, OpDef, ParamSpec, Shape, ShapeError

REGISTRY: dict[str, OpDef] = {
    op.name: op
    for family in (reshape, conv, norm, activation, pool, dense, merge)
    for op in family.OPS
}

__all__ = ["REGISTRY", "Attrs", "OpDef", "ParamSpec", "Shape", "ShapeError"]
