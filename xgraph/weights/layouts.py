"""The canonical (channels-last, Keras) layout against the channels-first one that torch and
ONNX share: kernels (kh, kw, in, out) against (out, in, kh, kw), a depthwise kernel
(kh, kw, in, m) against the grouped (in*m, 1, kh, kw) whose output channel is c*m + j, and
a spec axis over (H, W, C) as a dim of (N, C, H, W). Plain array methods: no numpy import,
no framework."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xgraph.ops.base import Shape

if TYPE_CHECKING:
    from numpy import ndarray


def same(array: ndarray, shape: Shape | None = None) -> ndarray:
    return array


def kernel_to_channels_first(array: ndarray) -> ndarray:
    return array.transpose(3, 2, 0, 1)


def kernel_from_channels_first(array: ndarray, shape: Shape) -> ndarray:
    return array.transpose(2, 3, 1, 0)


def depthwise_to_grouped(array: ndarray) -> ndarray:
    kh, kw, channels, multiplier = array.shape
    return array.reshape(kh, kw, channels * multiplier).transpose(2, 0, 1)[:, None]


def depthwise_from_grouped(array: ndarray, shape: Shape) -> ndarray:
    return array[:, 0].transpose(1, 2, 0).reshape(shape)


def channels_first_dim(axis: int, rank: int) -> int:
    """A spec axis over (H, W, C) (batch excluded) as a dim of the (N, C, H, W) tensor."""
    axis %= rank
    return 1 if axis == rank - 1 else axis + 2
