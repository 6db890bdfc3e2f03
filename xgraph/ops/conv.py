"""Convolutions: regular (optionally grouped), depthwise, and depthwise separable (depthwise
then 1x1 pointwise)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import Field, model_validator

from xgraph.ops.base import (
    Attrs,
    BatchNormFold,
    OpDef,
    OpExample,
    ParamSpec,
    Shape,
    ShapeError,
    require_rank,
)
from xgraph.ops.fields import Activation, Padding, Pair
from xgraph.ops.windows import window_output

Positive = Annotated[int, Field(ge=1)]


class WindowAttrs(Attrs):
    kernel_size: Pair
    strides: Pair = (1, 1)
    padding: Padding = "valid"
    dilation_rate: Pair = (1, 1)
    use_bias: bool = True
    activation: Activation = "linear"

    @model_validator(mode="after")
    def _strides_or_dilation(self) -> WindowAttrs:
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError("strides > 1 and dilation_rate > 1 cannot be combined")
        return self


class Conv2dAttrs(WindowAttrs):
    """`groups` splits the input channels and the filters into that many groups, each group
    of filters seeing only its group of channels (Keras Conv2D's `groups`): ConvNeXt's 7x7
    depthwise convolution is `groups` = channels = filters."""

    filters: Positive
    groups: Positive = 1


class DepthwiseConv2dAttrs(WindowAttrs):
    depth_multiplier: Positive = 1


class SeparableConv2dAttrs(WindowAttrs):
    filters: Positive
    depth_multiplier: Positive = 1


def _spatial(attrs: WindowAttrs, shape: Shape, op: str) -> tuple[int, int]:
    require_rank(shape, 3, op)
    return window_output(
        shape, attrs.padding, attrs.kernel_size, attrs.strides, attrs.dilation_rate
    )


def _bias(attrs: WindowAttrs, channels: int) -> list[ParamSpec]:
    return [ParamSpec("bias", (channels,), True, init="zeros")] if attrs.use_bias else []


def conv2d_shape(attrs: Conv2dAttrs, inputs: Sequence[Shape]) -> Shape:
    spatial = _spatial(attrs, inputs[0], "conv2d")
    channels, groups = inputs[0][-1], attrs.groups
    if channels % groups or attrs.filters % groups:
        raise ShapeError(
            f"conv2d with groups={groups} needs input channels and filters divisible by "
            f"{groups}, got {channels} input channels and {attrs.filters} filters",
            attr="groups",
        )
    return (*spatial, attrs.filters)


def conv2d_params(attrs: Conv2dAttrs, inputs: Sequence[Shape]) -> list[ParamSpec]:
    # Keras's layout: each filter sees the in / groups channels of its group.
    kernel = (*attrs.kernel_size, inputs[0][-1] // attrs.groups, attrs.filters)
    return [ParamSpec("kernel", kernel, True), *_bias(attrs, attrs.filters)]


def conv2d_macs(attrs: Conv2dAttrs, inputs: Sequence[Shape], output: Shape) -> int:
    kh, kw = attrs.kernel_size
    per_filter = kh * kw * (inputs[0][-1] // attrs.groups)
    return output[0] * output[1] * attrs.filters * per_filter


def depthwise_shape(attrs: DepthwiseConv2dAttrs, inputs: Sequence[Shape]) -> Shape:
    return (*_spatial(attrs, inputs[0], "depthwise_conv2d"), inputs[0][-1] * attrs.depth_multiplier)


def depthwise_params(attrs: DepthwiseConv2dAttrs, inputs: Sequence[Shape]) -> list[ParamSpec]:
    channels = inputs[0][-1]
    kernel = (*attrs.kernel_size, channels, attrs.depth_multiplier)
    return [
        ParamSpec("depthwise_kernel", kernel, True),
        *_bias(attrs, channels * attrs.depth_multiplier),
    ]


def depthwise_macs(attrs: DepthwiseConv2dAttrs, inputs: Sequence[Shape], output: Shape) -> int:
    kh, kw = attrs.kernel_size
    return output[0] * output[1] * output[2] * kh * kw


def separable_shape(attrs: SeparableConv2dAttrs, inputs: Sequence[Shape]) -> Shape:
    return (*_spatial(attrs, inputs[0], "separable_conv2d"), attrs.filters)


def separable_params(attrs: SeparableConv2dAttrs, inputs: Sequence[Shape]) -> list[ParamSpec]:
    channels = inputs[0][-1]
    middle = channels * attrs.depth_multiplier
    return [
        ParamSpec("depthwise_kernel", (*attrs.kernel_size, channels, attrs.depth_multiplier), True),
        ParamSpec("pointwise_kernel", (1, 1, middle, attrs.filters), True),
        *_bias(attrs, attrs.filters),
    ]


def separable_macs(attrs: SeparableConv2dAttrs, inputs: Sequence[Shape], output: Shape) -> int:
    kh, kw = attrs.kernel_size
    middle = inputs[0][-1] * attrs.depth_multiplier
    positions = output[0] * output[1]
    return positions * middle * kh * kw + positions * middle * attrs.filters


OPS = [
    OpDef(
        "conv2d",
        Conv2dAttrs,
        conv2d_shape,
        "2D convolution, optionally grouped (Keras Conv2D).",
        params=conv2d_params,
        macs=conv2d_macs,
        examples=(
            OpExample("valid", ((9, 9, 3),), {"filters": 4, "kernel_size": 3}),
            OpExample(
                "same_strided_asymmetric",
                ((8, 8, 3),),
                {
                    "filters": 4,
                    "kernel_size": 3,
                    "strides": 2,
                    "padding": "same",
                    "activation": "relu",
                },
            ),
            OpExample(
                "explicit_padding",
                ((7, 7, 2),),
                {
                    "filters": 3,
                    "kernel_size": [3, 2],
                    "padding": [[1, 0], [2, 1]],
                    "use_bias": False,
                },
            ),
            OpExample(
                "dilated_same",
                ((9, 9, 2),),
                {"filters": 3, "kernel_size": 3, "dilation_rate": 2, "padding": "same"},
            ),
            OpExample(
                "grouped",
                ((6, 6, 4),),
                {"filters": 6, "kernel_size": 3, "groups": 2, "strides": 2, "padding": "same"},
            ),
            OpExample(
                "groups_per_channel",
                ((5, 5, 3),),
                {"filters": 3, "kernel_size": 3, "groups": 3, "padding": "same"},
            ),
        ),
        batch_norm_fold=BatchNormFold("kernel"),
    ),
    OpDef(
        "depthwise_conv2d",
        DepthwiseConv2dAttrs,
        depthwise_shape,
        "One spatial filter per input channel, no mixing across channels (Keras DepthwiseConv2D).",
        params=depthwise_params,
        macs=depthwise_macs,
        examples=(
            OpExample(
                "multiplier",
                ((8, 8, 3),),
                {"kernel_size": 3, "depth_multiplier": 2, "padding": "same", "strides": 2},
            ),
        ),
        batch_norm_fold=BatchNormFold("depthwise_kernel", channel_axes=2),
    ),
    OpDef(
        "separable_conv2d",
        SeparableConv2dAttrs,
        separable_shape,
        "Depthwise conv then a 1x1 pointwise conv, nothing between them (Keras SeparableConv2D).",
        params=separable_params,
        macs=separable_macs,
        examples=(
            OpExample(
                "xception_like",
                ((9, 9, 4),),
                {"filters": 6, "kernel_size": 3, "padding": "same", "use_bias": False},
            ),
            OpExample(
                "multiplier_bias",
                ((8, 8, 3),),
                {
                    "filters": 5,
                    "kernel_size": 3,
                    "depth_multiplier": 2,
                    "strides": 2,
                    "padding": "same",
                },
            ),
        ),
        batch_norm_fold=BatchNormFold("pointwise_kernel"),
    ),
]
