"""What an op is: its attributes, shape rule, parameters and MAC count, defined once.

Backends hold only the lowering of an op and the conversion of its canonical weights; every
framework-neutral fact lives in an `OpDef`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

Shape = tuple[int, ...]


class Attrs(BaseModel):
    """Base of every op's attributes: immutable, strictly typed ("3" is not 3), unknown keys
    an error."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


A = TypeVar("A", bound=Attrs)


class HasAttrs(Protocol):
    """What `attrs_of` reads of a node (`xgraph.ir.graph.Node`, which this module cannot import)."""

    @property
    def name(self) -> str: ...

    @property
    def op(self) -> str: ...

    @property
    def attrs(self) -> Attrs: ...


def attrs_of(node: HasAttrs, kind: type[A]) -> A:
    """The node's attributes as the model `kind` a backend rule expects (its op's own model,
    or a base of it), or a TypeError naming the node, its op and both models."""
    attrs = node.attrs
    if not isinstance(attrs, kind):
        raise TypeError(
            f"node '{node.name}' (op '{node.op}') has attributes {type(attrs).__name__}, "
            f"where its rule expects {kind.__name__}"
        )
    return attrs


class ShapeError(ValueError):
    """An op cannot accept its input shapes; `attr` names the attribute at fault, if one is."""

    def __init__(self, message: str, attr: str | None = None) -> None:
        super().__init__(message)
        self.attr = attr


Initializer = Literal["kernel", "zeros", "ones"]


@dataclass(frozen=True)
class ParamSpec:
    """One weight tensor of a node, in the canonical (Keras, channels-last) layout.

    `init` says how a fresh model fills it: "kernel" draws from the spec's kernel
    initialiser (Glorot-uniform by default), "zeros" and "ones" are constants (biases,
    BatchNorm's beta and gamma, moving statistics), as Keras initialises them, and a number
    is a constant of the op's choosing (LayerScale's 1e-6)."""

    name: str
    shape: Shape
    trainable: bool
    init: Initializer | float = "kernel"
    # A whole number a framework keeps as an integer (Keras Normalization's count): read
    # from integer tensors in weight files as it is, held as float32 like every weight.
    integer: bool = False

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class BatchNormFold:
    """How a following BatchNorm folds into an op (an inference optimisation).

    The BatchNorm's per-channel scale multiplies `kernel`, whose output channel is the
    flattened last `channel_axes` axes (2 for a depthwise kernel (kh, kw, in, multiplier)),
    and its shift becomes the op's `bias`. The op must have `use_bias` and `activation`
    attributes: the fold sets `use_bias` and applies only when the activation is linear."""

    kernel: str
    channel_axes: int = 1


@dataclass(frozen=True)
class OpExample:
    """A small one-op graph for this op: the inputs' shapes (batch excluded) and the
    attributes. Every backend must compute the same numbers on it: the test suite runs
    each example through every backend that lowers the op, plugin ops included."""

    id: str
    inputs: tuple[Shape, ...]
    attrs: dict[str, Any]


ShapeRule = Callable[[Any, Sequence[Shape]], Shape]
ParamRule = Callable[[Any, Sequence[Shape]], list[ParamSpec]]
MacRule = Callable[[Any, Sequence[Shape], Shape], int]


def no_params(attrs: Any, inputs: Sequence[Shape]) -> list[ParamSpec]:
    return []


def same_shape(attrs: Any, inputs: Sequence[Shape]) -> Shape:
    """The output has the input's shape (element-wise and per-channel ops)."""
    return inputs[0]


def no_macs(attrs: Any, inputs: Sequence[Shape], output: Shape) -> int:
    return 0


@dataclass(frozen=True)
class OpDef:
    """Everything framework-neutral about one op.

    `min_inputs`/`max_inputs` bound its arity (`None`: unbounded). MACs count the
    multiply-accumulates of convolutions and matrix products only, as FLOP counters do.
    `origin` is the distribution the op comes from: "xgraph" for built-in ops, a plugin's
    package name otherwise (the registry fills it in).
    """

    name: str
    attrs: type[Attrs]
    infer_shape: ShapeRule
    summary: str
    params: ParamRule = no_params
    macs: MacRule = no_macs
    min_inputs: int = 1
    max_inputs: int | None = 1
    examples: tuple[OpExample, ...] = ()
    batch_norm_fold: BatchNormFold | None = None
    origin: str = "xgraph"


def require_rank(shape: Shape, rank: int, what: str) -> None:
    if len(shape) != rank:
        expected = {3: "(H, W, C)", 1: "(features,)"}.get(rank, f"rank {rank}")
        raise ShapeError(f"{what} needs an input of shape {expected}, got {format_shape(shape)}")


def format_shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
