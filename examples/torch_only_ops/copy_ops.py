"""Op `copy`: its input, unchanged."""

from __future__ import annotations

from collections.abc import Sequence

from xgraph.ops import Attrs, OpDef, OpExample, Shape


class CopyAttrs(Attrs):
    pass


def copy_shape(attrs: CopyAttrs, inputs: Sequence[Shape]) -> Shape:
    return inputs[0]


OPS = [
    OpDef(
        "copy",
        CopyAttrs,
        copy_shape,
        "The input, unchanged.",
        examples=(OpExample("image", ((4, 4, 3),), {}),),
    )
]
