"""The op registry: every op xgraph knows, built-in ones each defined once in its family's
module, and those that installed packages add through the `xgraph.ops` entry-point group."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from functools import cached_property

from xgraph.errors import SpecError
from xgraph.ops import activation, conv, dense, merge, norm, pool, preprocess, reshape
from xgraph.ops.base import (
    Attrs,
    BatchNormFold,
    OpDef,
    OpExample,
    ParamSpec,
    Shape,
    ShapeError,
)

BUILTIN = "xgraph"
BUILTIN_OPS: tuple[OpDef, ...] = tuple(
    op
    for family in (reshape, preprocess, conv, norm, activation, pool, dense, merge)
    for op in family.OPS
)


def _plugin_ops() -> Iterator[OpDef]:
    from xgraph.plugins import OPS, loaded, package_of

    for entry, ops in loaded(OPS):
        if not isinstance(ops, list | tuple) or not all(isinstance(op, OpDef) for op in ops):
            raise SpecError(
                f"op plugin '{entry.value}' of package '{package_of(entry)}' must name a list "
                f"of xgraph.ops.OpDef, got {type(ops).__name__}"
            )
        for op in ops:
            yield replace(op, origin=package_of(entry))


class OpRegistry(Mapping[str, OpDef]):
    """Op name -> definition. Plugins are read on first use, so importing xgraph stays cheap;
    two packages defining one op name is an error naming both."""

    @cached_property
    def _ops(self) -> dict[str, OpDef]:
        ops: dict[str, OpDef] = {}
        for op in (*BUILTIN_OPS, *_plugin_ops()):
            if op.name in ops:
                first = ops[op.name].origin
                raise SpecError(
                    f"op '{op.name}' is defined twice: by package '{first}' and by package "
                    f"'{op.origin}'",
                    hint=f"uninstall one of them, or rename the op in '{op.origin}'",
                )
            ops[op.name] = op
        return ops

    def __getitem__(self, name: str) -> OpDef:
        return self._ops[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ops)

    def __len__(self) -> int:
        return len(self._ops)


REGISTRY = OpRegistry()

__all__ = [
    "BUILTIN",
    "REGISTRY",
    "Attrs",
    "BatchNormFold",
    "OpDef",
    "OpExample",
    "ParamSpec",
    "Shape",
    "ShapeError",
]
