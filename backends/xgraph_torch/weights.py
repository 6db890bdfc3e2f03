"""Canonical (Keras-layout) weights to and from torch's layout, op by op.

Canonical kernels are (kh, kw, in, out); torch's are (out, in, kh, kw). A depthwise kernel
(kh, kw, in, m) becomes torch's grouped kernel (in*m, 1, kh, kw), output channel c*m + j.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Convert = Callable[[np.ndarray], np.ndarray]


def _identity(array: np.ndarray) -> np.ndarray:
    return array


def _kernel_to_torch(array: np.ndarray) -> np.ndarray:
    return array.transpose(3, 2, 0, 1)


def _kernel_from_torch(array: np.ndarray) -> np.ndarray:
    return array.transpose(2, 3, 1, 0)


def _depthwise_to_torch(array: np.ndarray) -> np.ndarray:
    kh, kw, channels, multiplier = array.shape
    return array.reshape(kh, kw, channels * multiplier).transpose(2, 0, 1)[:, None]


def _depthwise_from_torch(array: np.ndarray, multiplier: int) -> np.ndarray:
    out, _, kh, kw = array.shape
    return array[:, 0].transpose(1, 2, 0).reshape(kh, kw, out // multiplier, multiplier)


def _matrix(array: np.ndarray) -> np.ndarray:
    return array.T


@dataclass(frozen=True)
class TorchSlot:
    """Where a canonical parameter lives in a node's module, and how its layout converts."""

    attribute: str
    to_torch: Convert
    from_torch: Callable[[np.ndarray, int], np.ndarray]


def _same(convert: Convert) -> Callable[[np.ndarray, int], np.ndarray]:
    return lambda array, _multiplier: convert(array)


_BIAS = TorchSlot("bias", _identity, _same(_identity))
_BATCH_NORM = {
    "gamma": TorchSlot("weight", _identity, _same(_identity)),
    "beta": TorchSlot("bias", _identity, _same(_identity)),
    "moving_mean": TorchSlot("running_mean", _identity, _same(_identity)),
    "moving_variance": TorchSlot("running_var", _identity, _same(_identity)),
}

SLOTS: dict[str, dict[str, TorchSlot]] = {
    "conv2d": {
        "kernel": TorchSlot("weight", _kernel_to_torch, _same(_kernel_from_torch)),
        "bias": _BIAS,
    },
    "depthwise_conv2d": {
        "depthwise_kernel": TorchSlot("weight", _depthwise_to_torch, _depthwise_from_torch),
        "bias": _BIAS,
    },
    "separable_conv2d": {
        "depthwise_kernel": TorchSlot(
            "depthwise.weight", _depthwise_to_torch, _depthwise_from_torch
        ),
        "pointwise_kernel": TorchSlot(
            "pointwise.weight", _kernel_to_torch, _same(_kernel_from_torch)
        ),
        "bias": TorchSlot("pointwise.bias", _identity, _same(_identity)),
    },
    "batch_norm": _BATCH_NORM,
    "dense": {"kernel": TorchSlot("weight", _matrix, _same(_matrix)), "bias": _BIAS},
}
