"""Fully connected layers and the ops that feed them (flatten, dropout)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

from pydantic import BeforeValidator, Field

from xgraph.ops.base import (
    Attrs,
    BatchNormFold,
    OpDef,
    OpExample,
    ParamSpec,
    Shape,
    ShapeError,
    format_shape,
    same_shape,
)
from xgraph.ops.fields import Activation, as_tuple


class DenseAttrs(Attrs):
    units: Annotated[int, Field(ge=1)]
    use_bias: bool = True
    activation: Activation = "linear"


class FlattenAttrs(Attrs):
    """Flattens in (H, W, C) order, as Keras does, whatever a backend's memory layout."""


class DropoutAttrs(Attrs):
    """`noise_shape` (batch excluded, 1 where one draw is shared) drops whole slices: [1, 1, 1]
    drops whole examples, as EfficientNet's drop-connect does (Keras's noise_shape
    (None, 1, 1, 1)); the default drops units one by one. Kept values are scaled by
    1 / (1 - rate) in training, as Keras and torch do."""

    rate: Annotated[float, Field(ge=0, lt=1)]
    noise_shape: (
        Annotated[tuple[Annotated[int, Field(ge=1)], ...], BeforeValidator(as_tuple)] | None
    ) = None


class StochasticDepthAttrs(Attrs):
    """Drop-path: in training, each example's value is dropped whole with probability `rate`
    and the kept ones scaled by 1 / (1 - rate); the identity at inference (Keras ConvNeXt's
    StochasticDepth, timm's DropPath). It goes on a residual branch, before the sum."""

    rate: Annotated[float, Field(ge=0, lt=1)]


def dense_shape(attrs: DenseAttrs, inputs: Sequence[Shape]) -> Shape:
    return (*inputs[0][:-1], attrs.units)


def dense_params(attrs: DenseAttrs, inputs: Sequence[Shape]) -> list[ParamSpec]:
    params = [ParamSpec("kernel", (inputs[0][-1], attrs.units), True)]
    if attrs.use_bias:
        params.append(ParamSpec("bias", (attrs.units,), True, init="zeros"))
    return params


def dense_macs(attrs: DenseAttrs, inputs: Sequence[Shape], output: Shape) -> int:
    return math.prod(inputs[0]) * attrs.units


def flatten_shape(attrs: FlattenAttrs, inputs: Sequence[Shape]) -> Shape:
    return (math.prod(inputs[0]),)


def dropout_shape(attrs: DropoutAttrs, inputs: Sequence[Shape]) -> Shape:
    noise = attrs.noise_shape
    if noise is not None and (
        len(noise) != len(inputs[0])
        or any(n not in (1, size) for n, size in zip(noise, inputs[0], strict=True))
    ):
        raise ShapeError(
            f"'noise_shape' {format_shape(noise)} must have, for each axis of the input "
            f"{format_shape(inputs[0])}, 1 or that axis's size",
            attr="noise_shape",
        )
    return inputs[0]


OPS = [
    OpDef(
        "dense",
        DenseAttrs,
        dense_shape,
        "Fully connected layer on the last axis (Keras Dense).",
        params=dense_params,
        macs=dense_macs,
        examples=(
            OpExample("features", ((7,),), {"units": 4, "activation": "softmax"}),
            OpExample("on_channels", ((3, 3, 5),), {"units": 2, "use_bias": False}),
        ),
        batch_norm_fold=BatchNormFold("kernel"),
    ),
    OpDef(
        "flatten",
        FlattenAttrs,
        flatten_shape,
        "Flattens (H, W, C) into one axis.",
        examples=(OpExample("image", ((3, 4, 5),), {}),),
    ),
    OpDef(
        "dropout",
        DropoutAttrs,
        dropout_shape,
        "Drops a fraction `rate` of units (or of slices: noise_shape) in training.",
        examples=(
            OpExample("rate", ((4, 4, 3),), {"rate": 0.5}),
            OpExample("per_example", ((4, 4, 3),), {"rate": 0.2, "noise_shape": [1, 1, 1]}),
        ),
    ),
    OpDef(
        "stochastic_depth",
        StochasticDepthAttrs,
        same_shape,
        "Drops whole examples of a residual branch in training (drop-path); identity after.",
        examples=(OpExample("image", ((4, 4, 3),), {"rate": 0.25}),),
    ),
]
