"""Normalisation over the channel (last) axis, in Keras's terms: BatchNorm, LayerNorm, and
the learnt per-channel scale (LayerScale) that ConvNeXt puts after its blocks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import Field

from xgraph.ops.base import Attrs, OpDef, OpExample, ParamSpec, Shape, same_shape


class BatchNormAttrs(Attrs):
    """epsilon and momentum mean what they mean in Keras (momentum: decay of the moving average)."""

    epsilon: Annotated[float, Field(gt=0)] = 1e-3
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.99
    center: bool = True
    scale: bool = True


class LayerNormAttrs(Attrs):
    """Each position's channels normalised by their own mean and (biased) variance, then
    scaled by gamma and shifted by beta (Keras LayerNormalization on the last axis; Keras's
    default epsilon 1e-3, ConvNeXt's 1e-6)."""

    epsilon: Annotated[float, Field(gt=0)] = 1e-3
    center: bool = True
    scale: bool = True


class LayerScaleAttrs(Attrs):
    """x * gamma, gamma learnt per channel and starting at `init_value` (CaiT's LayerScale, as
    ConvNeXt uses it: a residual branch starts almost silent)."""

    init_value: Annotated[float, Field(allow_inf_nan=False)] = 1e-6


def batch_norm_shape(attrs: BatchNormAttrs, inputs: Sequence[Shape]) -> Shape:
    return inputs[0]


def batch_norm_params(attrs: BatchNormAttrs, inputs: Sequence[Shape]) -> list[ParamSpec]:
    channels = (inputs[0][-1],)
    params = []
    if attrs.scale:
        params.append(ParamSpec("gamma", channels, True, init="ones"))
    if attrs.center:
        params.append(ParamSpec("beta", channels, True, init="zeros"))
    params.append(ParamSpec("moving_mean", channels, False, init="zeros"))
    params.append(ParamSpec("moving_variance", channels, False, init="ones"))
    return params


def layer_norm_params(attrs: LayerNormAttrs, inputs: Sequence[Shape]) -> list[ParamSpec]:
    channels = (inputs[0][-1],)
    params = []
    if attrs.scale:
        params.append(ParamSpec("gamma", channels, True, init="ones"))
    if attrs.center:
        params.append(ParamSpec("beta", channels, True, init="zeros"))
    return params


def layer_scale_params(attrs: LayerScaleAttrs, inputs: Sequence[Shape]) -> list[ParamSpec]:
    return [ParamSpec("gamma", (inputs[0][-1],), True, init=float(attrs.init_value))]


OPS = [
    OpDef(
        "batch_norm",
        BatchNormAttrs,
        batch_norm_shape,
        "Batch normalisation of the channel axis; moving statistics are non-trainable weights.",
        params=batch_norm_params,
        examples=(
            OpExample("default", ((5, 5, 4),), {}),
            OpExample("no_center", ((5, 5, 4),), {"center": False, "epsilon": 0.01}),
            OpExample("features", ((6,),), {"scale": False}),
        ),
    ),
    OpDef(
        "layer_norm",
        LayerNormAttrs,
        same_shape,
        "Layer normalisation of the channel axis at each position (Keras LayerNormalization).",
        params=layer_norm_params,
        examples=(
            OpExample("image", ((4, 4, 6),), {"epsilon": 1e-6}),
            OpExample("features_no_center", ((6,),), {"center": False}),
        ),
    ),
    OpDef(
        "layer_scale",
        LayerScaleAttrs,
        same_shape,
        "x * gamma, a learnt per-channel scale starting at init_value (ConvNeXt's LayerScale).",
        params=layer_scale_params,
        examples=(OpExample("image", ((4, 4, 6),), {"init_value": 0.5}),),
    ),
]
