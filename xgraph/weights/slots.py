"""Where a backend holds each canonical parameter: one slot type for every backend (torch,
Keras, ONNX and plugins' backends alike), so weights move between a model and the canonical
layout, and weight files are read, by the same few facts.

A rule maps each canonical parameter name of its op (`kernel`, `moving_mean`, as the op's
ParamSpecs give them) to a `WeightSlot`; `PlacedWeight` is that slot for one node. The
layout conversions are those of `xgraph.weights.layouts`. Plain array methods: no numpy
import, no framework.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xgraph.ops.base import ParamSpec, Shape
from xgraph.weights.layouts import (
    depthwise_from_grouped,
    depthwise_to_grouped,
    kernel_from_channels_first,
    kernel_to_channels_first,
    same,
)

if TYPE_CHECKING:
    from numpy import ndarray

ToFramework = Callable[["ndarray"], "ndarray"]
# Back to the canonical layout, given the canonical shape to restore (a flattened tensor).
FromFramework = Callable[["ndarray", Shape], "ndarray"]


@dataclass(frozen=True)
class WeightSlot:
    """Where a framework holds one canonical parameter, and how its layout converts.

    `key` is the framework's name for it inside the node's layer: a torch attribute path
    (`depthwise.weight`), a Keras weight name; empty, the canonical name itself (ONNX
    initializers are named `<node>/<param>`). `rank` is the canonical tensor's rank where the
    op fixes it (None: it varies with the input); Keras's legacy files, which record no
    class, are told apart by their weights' names and ranks."""

    key: str = ""
    to_framework: ToFramework = same
    from_framework: FromFramework = same
    rank: int | None = None


def kept(key: str = "", rank: int | None = None) -> WeightSlot:
    """A parameter whose layout the framework shares: vectors, Keras's every weight."""
    return WeightSlot(key, same, same, rank)


def channels_first_kernel(key: str = "") -> WeightSlot:
    """A convolution kernel: (kh, kw, in, out) as (out, in, kh, kw), for torch and ONNX."""
    return WeightSlot(key, kernel_to_channels_first, kernel_from_channels_first, 4)


def grouped_depthwise_kernel(key: str = "") -> WeightSlot:
    """A depthwise kernel (kh, kw, in, m) as a grouped convolution's (in*m, 1, kh, kw)."""
    return WeightSlot(key, depthwise_to_grouped, depthwise_from_grouped, 4)


def _transposed(array: ndarray, shape: Shape | None = None) -> ndarray:
    return array.T


def transposed_matrix(key: str = "") -> WeightSlot:
    """A dense kernel (in, out) as torch's (out, in)."""
    return WeightSlot(key, _transposed, _transposed, 2)


@dataclass(frozen=True)
class PlacedWeight:
    """One node's canonical parameter and the slot a backend holds it in."""

    node: str
    param: ParamSpec
    slot: WeightSlot

    @property
    def key(self) -> str:
        """The canonical weights key, `<node>/<param>` (as xgraph.weights.initial.weight_key
        names it; that module imports numpy, which rules must not need)."""
        return f"{self.node}/{self.param.name}"

    @property
    def framework_key(self) -> str:
        """The framework's name for the slot inside the node's layer (`depthwise.weight`)."""
        return self.slot.key or self.param.name

    def to_framework(self, array: ndarray) -> ndarray:
        return self.slot.to_framework(array)

    def from_framework(self, array: ndarray) -> ndarray:
        return self.slot.from_framework(array, self.param.shape)
