"""The plugin's ops, defined the way xgraph's built-in ops are."""

from __future__ import annotations

from collections.abc import Sequence

from xgraph.ops import Attrs, OpDef, OpExample, ParamSpec, Shape


class ChannelAffineAttrs(Attrs):
    """`offset: false` leaves out the shift: y = x * scale."""

    offset: bool = True


class MishAttrs(Attrs):
    pass


def same_shape(attrs: Attrs, inputs: Sequence[Shape]) -> Shape:
    return inputs[0]


def channel_affine_params(attrs: ChannelAffineAttrs, inputs: Sequence[Shape]) -> list[ParamSpec]:
    channels = (inputs[0][-1],)
    params = [ParamSpec("scale", channels, True, init="ones")]
    if attrs.offset:
        params.append(ParamSpec("offset", channels, True, init="zeros"))
    return params


OPS = [
    OpDef(
        "channel_affine",
        ChannelAffineAttrs,
        same_shape,
        "A learnt scale (and shift) per channel: y = x * scale + offset.",
        params=channel_affine_params,
        examples=(
            OpExample("image", ((5, 5, 4),), {}),
            OpExample("no_offset", ((5, 5, 4),), {"offset": False}),
            OpExample("features", ((6,),), {}),
        ),
    ),
    OpDef(
        "mish",
        MishAttrs,
        same_shape,
        "x * tanh(softplus(x)), a smooth, self-gated activation.",
        examples=(OpExample("image", ((4, 4, 3),), {}),),
    ),
]
