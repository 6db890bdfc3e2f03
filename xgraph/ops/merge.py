"""Ops that join branches: element-wise add and multiply, a residual sum with a constant scale,
and concatenation along an axis."""

from __future__ import annotations

from collections.abc import Sequence

from xgraph.ops.base import Attrs, OpDef, OpExample, Shape, ShapeError, format_shape


class AddAttrs(Attrs):
    pass


class MultiplyAttrs(Attrs):
    """Inputs of one rank broadcast against each other as NumPy does, batch excluded (Keras
    Multiply): (H, W, C) times (1, 1, C) scales each channel, as squeeze-and-excitation
    does. Inputs of different ranks are refused: a `reshape` says how they line up."""


class ScaledAddAttrs(Attrs):
    """y = inputs[0] + scale * inputs[1], a residual branch scaled by a constant before it is
    added (InceptionResNetV2's CustomScaleLayer)."""

    scale: float


class ConcatAttrs(Attrs):
    """`axis` counts over (H, W, C), batch excluded; -1 (channels) by default."""

    axis: int = -1


def add_shape(attrs: AddAttrs | ScaledAddAttrs, inputs: Sequence[Shape]) -> Shape:
    if any(shape != inputs[0] for shape in inputs[1:]):
        shapes = ", ".join(format_shape(s) for s in inputs)
        op = "scaled_add" if isinstance(attrs, ScaledAddAttrs) else "add"
        raise ShapeError(f"{op} needs inputs of one shape, got {shapes}")
    return inputs[0]


def broadcast_shape(attrs: MultiplyAttrs, inputs: Sequence[Shape]) -> Shape:
    if any(len(shape) != len(inputs[0]) for shape in inputs):
        shapes = ", ".join(format_shape(s) for s in inputs)
        raise ShapeError(f"multiply needs inputs of one rank, got {shapes}")
    result = []
    for sizes in zip(*inputs, strict=True):
        wide = {size for size in sizes if size != 1}
        if len(wide) > 1:
            shapes = ", ".join(format_shape(s) for s in inputs)
            raise ShapeError(f"multiply cannot broadcast {shapes} against each other")
        result.append(wide.pop() if wide else 1)
    return tuple(result)


def concat_shape(attrs: ConcatAttrs, inputs: Sequence[Shape]) -> Shape:
    rank = len(inputs[0])
    if not -rank <= attrs.axis < rank:
        raise ShapeError(f"axis {attrs.axis} is out of range for rank {rank}", attr="axis")
    axis = attrs.axis % rank
    for shape in inputs[1:]:
        if len(shape) != rank or any(
            a != b for i, (a, b) in enumerate(zip(shape, inputs[0], strict=True)) if i != axis
        ):
            shapes = ", ".join(format_shape(s) for s in inputs)
            raise ShapeError(
                f"concat on axis {attrs.axis} needs the other axes equal, got {shapes}"
            )
    return (*inputs[0][:axis], sum(s[axis] for s in inputs), *inputs[0][axis + 1 :])


OPS = [
    OpDef(
        "add",
        AddAttrs,
        add_shape,
        "Element-wise sum of two or more inputs.",
        min_inputs=2,
        max_inputs=None,
        examples=(OpExample("three", ((4, 4, 3), (4, 4, 3), (4, 4, 3)), {}),),
    ),
    OpDef(
        "scaled_add",
        ScaledAddAttrs,
        add_shape,
        "inputs[0] + scale * inputs[1], a residual sum with a constant scale "
        "(InceptionResNetV2's CustomScaleLayer).",
        min_inputs=2,
        max_inputs=2,
        examples=(OpExample("residual", ((4, 4, 3), (4, 4, 3)), {"scale": 0.17}),),
    ),
    OpDef(
        "multiply",
        MultiplyAttrs,
        broadcast_shape,
        "Element-wise product of inputs of one rank, broadcast as NumPy does (Keras Multiply).",
        min_inputs=2,
        max_inputs=None,
        examples=(
            OpExample("same", ((4, 4, 3), (4, 4, 3)), {}),
            OpExample("per_channel", ((4, 4, 3), (1, 1, 3)), {}),
            OpExample("three", ((4, 4, 3), (1, 1, 3), (4, 4, 1)), {}),
        ),
    ),
    OpDef(
        "concat",
        ConcatAttrs,
        concat_shape,
        "Concatenation of two or more inputs.",
        min_inputs=2,
        max_inputs=None,
        examples=(
            OpExample("channels", ((4, 4, 3), (4, 4, 2)), {}),
            OpExample("height", ((4, 4, 3), (2, 4, 3)), {"axis": 0}),
        ),
    ),
]
