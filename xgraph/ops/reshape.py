"""Ops that only move, pad or crop values: inputs, zero padding, cropping and reshapes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

from pydantic import BeforeValidator, Field

from xgraph.ops.base import Attrs, OpDef, OpExample, Shape, ShapeError, format_shape, require_rank
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


class Cropping2dAttrs(Attrs):
    """Rows and columns cut off each side, spelt as zero_pad2d's `padding` is (Keras
    Cropping2D's `cropping`): `c`, `[ch, cw]` or `[[top, bottom], [left, right]]`."""

    cropping: ExplicitPadding = ((0, 0), (0, 0))


class ReshapeAttrs(Attrs):
    """The shape of one example after the reshape, batch excluded, read in (H, W, C) order
    as Keras's Reshape reads it; one axis may be -1, inferred from the others."""

    target_shape: Annotated[
        tuple[Annotated[int, Field(ge=-1)], ...],
        Field(min_length=1, max_length=3),
        BeforeValidator(as_tuple),
    ]


def input_shape(attrs: InputAttrs, inputs: Sequence[Shape]) -> Shape:
    return attrs.shape


def zero_pad2d_shape(attrs: ZeroPad2dAttrs, inputs: Sequence[Shape]) -> Shape:
    require_rank(inputs[0], 3, "zero_pad2d")
    (top, bottom), (left, right) = attrs.padding
    height, width, channels = inputs[0]
    return (height + top + bottom, width + left + right, channels)


def cropping2d_shape(attrs: Cropping2dAttrs, inputs: Sequence[Shape]) -> Shape:
    require_rank(inputs[0], 3, "cropping2d")
    (top, bottom), (left, right) = attrs.cropping
    height, width, channels = inputs[0]
    if top + bottom >= height or left + right >= width:
        raise ShapeError(
            f"cropping2d cannot cut {top} + {bottom} rows and {left} + {right} columns off "
            f"{format_shape(inputs[0])}: at least one row and one column must remain",
            attr="cropping",
        )
    return (height - top - bottom, width - left - right, channels)


def reshape_shape(attrs: ReshapeAttrs, inputs: Sequence[Shape]) -> Shape:
    target = attrs.target_shape
    size = math.prod(inputs[0])
    if 0 in target or target.count(-1) > 1:
        raise ShapeError(
            f"'target_shape' takes positive sizes and at most one -1, got {format_shape(target)}",
            attr="target_shape",
        )
    known = math.prod(d for d in target if d != -1)
    if -1 in target and size % known == 0:
        target = tuple(size // known if d == -1 else d for d in target)
    if math.prod(target) != size:
        raise ShapeError(
            f"reshape cannot make {format_shape(attrs.target_shape)} of the "
            f"{size} values of {format_shape(inputs[0])}",
            attr="target_shape",
        )
    return target


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
    OpDef(
        "cropping2d",
        Cropping2dAttrs,
        cropping2d_shape,
        "Cuts rows and columns off the edges of height and width (Keras Cropping2D).",
        examples=(OpExample("asymmetric", ((6, 7, 2),), {"cropping": [[1, 0], [2, 1]]}),),
    ),
    OpDef(
        "reshape",
        ReshapeAttrs,
        reshape_shape,
        "Gives the values another shape, in (H, W, C) order (Keras Reshape).",
        examples=(
            OpExample("to_features", ((1, 1, 6),), {"target_shape": [6]}),
            OpExample("image_to_features", ((2, 3, 4),), {"target_shape": [-1]}),
            OpExample("to_image", ((6,),), {"target_shape": [1, 1, 6]}),
        ),
    ),
]
