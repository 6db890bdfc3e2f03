"""Preprocessing inside the model, as Keras's Rescaling and Normalization layers do it, so a
model that carries its own input scaling (EfficientNet, MobileNetV3) is one spec."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import BeforeValidator, Field

from xgraph.ops.base import Attrs, OpDef, OpExample, ParamSpec, Shape, ShapeError
from xgraph.ops.fields import as_tuple

# Keras's backend.epsilon(): Normalization divides by max(sqrt(variance), this).
NORMALIZATION_EPSILON = 1e-7

PerChannel = Annotated[float | tuple[float, ...], BeforeValidator(as_tuple)]
Values = Annotated[tuple[float, ...], BeforeValidator(as_tuple)]
NonNegatives = Annotated[tuple[Annotated[float, Field(ge=0)], ...], BeforeValidator(as_tuple)]


class RescalingAttrs(Attrs):
    """y = x * scale + offset; each a number, or one per channel (Keras Rescaling)."""

    scale: PerChannel
    offset: PerChannel = 0.0


class NormalizationAttrs(Attrs):
    """y = (x - mean) / max(sqrt(variance), 1e-7) per channel (Keras Normalization on the
    last axis). Given `mean` and `variance` are constants of the model; without them, they
    are non-trainable weights (with the `count` of examples Keras keeps when it adapts the
    layer), filled from a weights file."""

    mean: Values | None = None
    variance: NonNegatives | None = None

    def model_post_init(self, context: object) -> None:
        if (self.mean is None) != (self.variance is None):
            raise ValueError("give both 'mean' and 'variance', or neither (weights)")


def _per_channel(name: str, value: float | tuple[float, ...], channels: int) -> None:
    if isinstance(value, tuple) and len(value) not in (1, channels):
        raise ShapeError(f"'{name}' has {len(value)} values for {channels} channels", attr=name)


def rescaling_shape(attrs: RescalingAttrs, inputs: Sequence[Shape]) -> Shape:
    _per_channel("scale", attrs.scale, inputs[0][-1])
    _per_channel("offset", attrs.offset, inputs[0][-1])
    return inputs[0]


def normalization_shape(attrs: NormalizationAttrs, inputs: Sequence[Shape]) -> Shape:
    if attrs.mean is not None and attrs.variance is not None:
        _per_channel("mean", attrs.mean, inputs[0][-1])
        _per_channel("variance", attrs.variance, inputs[0][-1])
    return inputs[0]


def normalization_params(attrs: NormalizationAttrs, inputs: Sequence[Shape]) -> list[ParamSpec]:
    if attrs.mean is not None:
        return []
    channels = (inputs[0][-1],)
    return [
        ParamSpec("mean", channels, False, init="zeros"),
        ParamSpec("variance", channels, False, init="ones"),
        ParamSpec("count", (), False, init="zeros", integer=True),
    ]


OPS = [
    OpDef(
        "rescaling",
        RescalingAttrs,
        rescaling_shape,
        "x * scale + offset, scalars or per channel (Keras Rescaling).",
        examples=(
            OpExample("scalar", ((4, 4, 3),), {"scale": 0.0078431, "offset": -1.0}),
            OpExample(
                "per_channel", ((4, 4, 3),), {"scale": [0.5, 2.0, -1.0], "offset": [1, 0, 2]}
            ),
        ),
    ),
    OpDef(
        "normalization",
        NormalizationAttrs,
        normalization_shape,
        "(x - mean) / sqrt(variance) per channel, as weights or constants (Keras Normalization).",
        params=normalization_params,
        examples=(
            OpExample("weights", ((4, 4, 3),), {}),
            OpExample(
                "constants",
                ((4, 4, 3),),
                {"mean": [0.485, 0.456, 0.406], "variance": [0.052, 0.05, 0.051]},
            ),
        ),
    ),
]
