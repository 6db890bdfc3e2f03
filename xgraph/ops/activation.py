"""Element-wise activations (softmax: over the last axis)."""

from __future__ import annotations

from collections.abc import Sequence

from xgraph.ops.base import Attrs, OpDef, OpExample, Shape
from xgraph.ops.fields import ACTIVATIONS, Activation


class ActivationAttrs(Attrs):
    activation: Activation


def activation_shape(attrs: ActivationAttrs, inputs: Sequence[Shape]) -> Shape:
    return inputs[0]


OPS = [
    OpDef(
        "activation",
        ActivationAttrs,
        activation_shape,
        "An activation function as a node of its own (Keras Activation).",
        examples=tuple(OpExample(name, ((4, 4, 3),), {"activation": name}) for name in ACTIVATIONS),
    ),
]
