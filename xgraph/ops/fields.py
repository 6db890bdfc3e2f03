"""Attribute types shared by several ops, each accepting the spellings a Keras user writes."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator, Field

# hard_sigmoid is Keras 3's: relu6(x + 3) / 6; hard_swish is x * hard_sigmoid(x); gelu is
# the exact x * Phi(x) (Keras's "gelu", torch's GELU()); gelu_tanh its tanh approximation,
# 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) (torch's GELU(approximate="tanh")).
ActivationName = Literal[
    "linear",
    "relu",
    "relu6",
    "sigmoid",
    "hard_sigmoid",
    "tanh",
    "softmax",
    "swish",
    "hard_swish",
    "gelu",
    "gelu_tanh",
]
ACTIVATIONS: tuple[str, ...] = get_args(ActivationName)


def _activation(value: Any) -> Any:
    """Keras spells 'no activation' as None; a spec may write none, null or linear."""
    if value is None or value == "none":
        return "linear"
    return value


Activation = Annotated[
    ActivationName,
    BeforeValidator(_activation, json_schema_input_type=ActivationName | Literal["none"] | None),
]


def as_tuple(value: Any) -> Any:
    """YAML has lists where the attributes hold tuples."""
    return tuple(as_tuple(v) for v in value) if isinstance(value, list) else value


def _pair(value: Any) -> Any:
    """`3` means (3, 3); `[3, 5]` means (height 3, width 5)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    return as_tuple(value)


PositiveInt = Annotated[int, Field(ge=1)]
Pair = Annotated[
    tuple[PositiveInt, PositiveInt],
    BeforeValidator(_pair, json_schema_input_type=PositiveInt | tuple[PositiveInt, PositiveInt]),
]

NonNegative = Annotated[int, Field(ge=0)]
PadAmounts = tuple[tuple[NonNegative, NonNegative], tuple[NonNegative, NonNegative]]


def _pad_amounts(value: Any) -> Any:
    """`1` pads 1 on every side; `[1, 2]` pads 1 above and below, 2 left and right;
    `[[top, bottom], [left, right]]` is explicit."""
    if isinstance(value, int) and not isinstance(value, bool):
        return ((value, value), (value, value))
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return ((value[0], value[0]), (value[1], value[1]))
    return as_tuple(value)


ExplicitPadding = Annotated[
    PadAmounts,
    BeforeValidator(
        _pad_amounts,
        json_schema_input_type=NonNegative | tuple[NonNegative, NonNegative] | PadAmounts,
    ),
]
Padding = Literal["valid", "same"] | ExplicitPadding
