"""Pooling: windowed max / average, and global pooling over height and width."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from xgraph.ops.base import Attrs, OpDef, OpExample, Shape, require_rank
from xgraph.ops.fields import Pair
from xgraph.ops.windows import window_output


class Pool2dAttrs(Attrs):
    """`strides` defaults to `pool_size`, as in Keras. 'same' pads max pools with -inf and
    leaves padding out of the average, as TensorFlow does."""

    pool_size: Pair = (2, 2)
    strides: Pair | None = None
    padding: Literal["valid", "same"] = "valid"

    @property
    def window_strides(self) -> tuple[int, int]:
        return self.strides or self.pool_size


class GlobalPoolAttrs(Attrs):
    keepdims: bool = False


def pool2d_shape(attrs: Pool2dAttrs, inputs: Sequence[Shape]) -> Shape:
    require_rank(inputs[0], 3, "a 2D pool")
    height, width = window_output(
        inputs[0], attrs.padding, attrs.pool_size, attrs.window_strides, attr="pool_size"
    )
    return (height, width, inputs[0][2])


def global_pool_shape(attrs: GlobalPoolAttrs, inputs: Sequence[Shape]) -> Shape:
    require_rank(inputs[0], 3, "a global pool")
    return (1, 1, inputs[0][2]) if attrs.keepdims else (inputs[0][2],)


_GLOBAL_EXAMPLES = (
    OpExample("flat", ((5, 5, 3),), {}),
    OpExample("keepdims", ((5, 5, 3),), {"keepdims": True}),
)

OPS = [
    OpDef(
        "max_pool2d",
        Pool2dAttrs,
        pool2d_shape,
        "Windowed maximum (Keras MaxPooling2D).",
        examples=(
            OpExample(
                "same_asymmetric",
                ((74, 74, 2),),
                {"pool_size": 3, "strides": 2, "padding": "same"},
            ),
            OpExample("valid_default_strides", ((8, 8, 2),), {}),
        ),
    ),
    OpDef(
        "avg_pool2d",
        Pool2dAttrs,
        pool2d_shape,
        "Windowed average (Keras AveragePooling2D).",
        examples=(
            OpExample(
                "same_asymmetric", ((8, 8, 2),), {"pool_size": 3, "strides": 2, "padding": "same"}
            ),
            OpExample(
                "same_symmetric", ((7, 7, 2),), {"pool_size": 3, "strides": 1, "padding": "same"}
            ),
            OpExample("valid", ((8, 8, 2),), {"pool_size": 2}),
        ),
    ),
    OpDef(
        "global_avg_pool",
        GlobalPoolAttrs,
        global_pool_shape,
        "Average over height and width (Keras GlobalAveragePooling2D).",
        examples=_GLOBAL_EXAMPLES,
    ),
    OpDef(
        "global_max_pool",
        GlobalPoolAttrs,
        global_pool_shape,
        "Maximum over height and width (Keras GlobalMaxPooling2D).",
        examples=_GLOBAL_EXAMPLES,
    ),
]
