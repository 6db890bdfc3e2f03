"""Sliding-window arithmetic shared by convolutions and pools, with TensorFlow's 'same'.

'same' means output = ceil(input / stride); the total padding is split with the extra pixel at
the bottom/right. Backends read the resolved amounts from here, so they all pad alike.
"""

from __future__ import annotations

from typing import Any

from xgraph.ops.base import Shape, ShapeError

PadPair = tuple[int, int]


def effective_kernel(kernel: int, dilation: int) -> int:
    return (kernel - 1) * dilation + 1


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> PadPair:
    out = -(-size // stride)
    total = max((out - 1) * stride + effective_kernel(kernel, dilation) - size, 0)
    return (total // 2, total - total // 2)


def resolve_padding(
    padding: Any,
    size_hw: tuple[int, int],
    kernel: tuple[int, int],
    strides: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
) -> tuple[PadPair, PadPair]:
    """Padding as explicit ((top, bottom), (left, right)) amounts for this input size."""
    if padding == "valid":
        return ((0, 0), (0, 0))
    if padding == "same":
        return (
            same_padding(size_hw[0], kernel[0], strides[0], dilation[0]),
            same_padding(size_hw[1], kernel[1], strides[1], dilation[1]),
        )
    return padding


def window_output(
    shape: Shape,
    padding: Any,
    kernel: tuple[int, int],
    strides: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
    attr: str = "kernel_size",
) -> tuple[int, int]:
    """Output height and width of a window op, or a ShapeError when the window does not fit."""
    pads = resolve_padding(padding, (shape[0], shape[1]), kernel, strides, dilation)
    out = []
    for axis in range(2):
        padded = shape[axis] + pads[axis][0] + pads[axis][1]
        span = effective_kernel(kernel[axis], dilation[axis])
        if span > padded:
            raise ShapeError(
                f"window {kernel[0]}x{kernel[1]} is larger than its padded input "
                f"{shape[0] + sum(pads[0])}x{shape[1] + sum(pads[1])}",
                attr=attr,
            )
        out.append((padded - span) // strides[axis] + 1)
    return (out[0], out[1])
