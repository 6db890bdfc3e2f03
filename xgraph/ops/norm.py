"""Batch normalisation over the channel (last) axis, in Keras's terms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import Field

from xgraph.ops.base import Attrs, OpDef, OpExample, ParamSpec, Shape


class BatchNormAttrs(Attrs):
    """epsilon and momentum mean what they mean in Keras (momentum: decay of the moving average)."""

    epsilon: Annotated[float, Field(gt=0)] = 1e-3
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.99
    center: bool = True
    scale: bool = True


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
]
