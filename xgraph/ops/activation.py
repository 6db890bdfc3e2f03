"""Element-wise activations (softmax: over the last axis), and PReLU's learnt slopes."""

from __future__ import annotations

from collections.abc import Sequence

from xgraph.ops.base import Attrs, OpDef, OpExample, ParamSpec, Shape
from xgraph.ops.fields import ACTIVATIONS, Activation


class ActivationAttrs(Attrs):
    activation: Activation


class PReLUAttrs(Attrs):
    """One learnt slope per channel for negative inputs, shared over height and width
    (Keras PReLU with shared_axes [1, 2]; torch nn.PReLU with one parameter per channel)."""


def activation_shape(attrs: Attrs, inputs: Sequence[Shape]) -> Shape:
    return inputs[0]


def prelu_params(attrs: PReLUAttrs, inputs: Sequence[Shape]) -> list[ParamSpec]:
    """`alpha` as Keras holds it: (1, 1, C) for images, (C,) for features; zeros at first."""
    shape = inputs[0]
    return [ParamSpec("alpha", (*(1 for _ in shape[:-1]), shape[-1]), True, init="zeros")]


OPS = [
    OpDef(
        "activation",
        ActivationAttrs,
        activation_shape,
        "An activation function as a node of its own (Keras Activation).",
        examples=tuple(OpExample(name, ((4, 4, 3),), {"activation": name}) for name in ACTIVATIONS),
    ),
    OpDef(
        "prelu",
        PReLUAttrs,
        activation_shape,
        "max(x, 0) + alpha * min(x, 0), alpha learnt per channel (Keras PReLU).",
        params=prelu_params,
        examples=(
            OpExample("image", ((5, 5, 4),), {}),
            OpExample("features", ((6,),), {}),
        ),
    ),
]
