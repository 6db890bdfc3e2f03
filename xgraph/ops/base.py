"""What an op is: its attributes, shape rule, parameters and MAC count, defined once.

Backends hold only the lowering of an op and the conversion of its canonical weights; every
framework-neutral fact lives in an `OpDef`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

Shape = tuple[int, ...]


class Attrs(BaseModel):
    """Base of every op's attributes: immutable, strictly typed ("3" is not 3), unknown keys
    an error."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class ShapeError(ValueError):
    """An op cannot accept its input shapes; `attr` names the attribute at fault, if one is."""

    def __init__(self, message: str, attr: str | None = None) -> None:
        super().__init__(message)
        self.attr = attr


@dataclass(frozen=True)
class ParamSpec:
    """One weight tensor of a node, in the canonical (Keras, channels-last) layout."""

    name: str
    shape: Shape
    trainable: bool

    @property
    def size(self) -> int:
        return math.prod(self.shape)


ShapeRule = Callable[[Any, Sequence[Shape]], Shape]
ParamRule = Callable[[Any, Sequence[Shape]], list[ParamSpec]]
MacRule = Callable[[Any, Sequence[Shape], Shape], int]


def no_params(attrs: Any, inputs: Sequence[Shape]) -> list[ParamSpec]:
    return []


def no_macs(attrs: Any, inputs: Sequence[Shape], output: Shape) -> int:
    return 0


@dataclass(frozen=True)
class OpDef:
    """Everything framework-neutral about one op.

    `min_inputs`/`max_inputs` bound its arity (`None`: unbounded). MACs count the
    multiply-accumulates of convolutions and matrix products only, as FLOP counters do.
    """

    name: str
    attrs: type[Attrs]
    infer_shape: ShapeRule
    summary: str
    params: ParamRule = no_params
    macs: MacRule = no_macs
    min_inputs: int = 1
    max_inputs: int | None = 1


def require_rank(shape: Shape, rank: int, what: str) -> None:
    if len(shape) != rank:
        expected = {3: "(H, W, C)", 1: "(features,)"}.get(rank, f"rank {rank}")
        raise ShapeError(f"{what} needs an input of shape {expected}, got {format_shape(shape)}")


def format_shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
