"""Ops that only move or pad values: inputs and zero padding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import BeforeValidator, Field

from xgraph.ops.base import Attrs, OpDef, OpExample, Shape, require_rank
from xgraph.ops.fields import ExplicitPadding, as_tuple


class InputAttrs(Attrs):
    """The shape of one example, batch implicit: (H, W, C) for images."""

    shape: Annotated[
        tuple[Annotated[int, Field(ge=1)], ...],
        Field(min_length=1, max_length=3),
        BeforeValidator(as_tuple),
    ]


class ZeroPad2dAttrs(Attrs):
    padding: ExplicitPadding = ((1, 1), (1, 1))


def input_shape(attrs: InputAttrs, inputs: Sequence[Shape]) -> Shape:
    return attrs.shape


def zero_pad2d_shape(attrs: ZeroPad2dAttrs, inputs: Sequence[Shape]) -> Shape:
    require_rank(inputs[0], 3, "zero_pad2d")
    (top, bottom), (left, right) = attrs.padding
    height, width, channels = inputs[0]
    return (height + top + bottom, width + left + right, channels)


OPS = [
    OpDef(
        "input",
        InputAttrs,
        input_shape,
        "A model input.",
        min_inputs=0,
        max_inputs=0,
        examples=(OpExample("identity", ((5, 5, 3),), {}),),
    ),
    OpDef(
        "zero_pad2d",
        ZeroPad2dAttrs,
        zero_pad2d_shape,
        "Pads height and width with zeros (Keras ZeroPadding2D).",
        examples=(OpExample("asymmetric", ((4, 4, 3),), {"padding": [[1, 0], [2, 3]]}),),
    ),
]
