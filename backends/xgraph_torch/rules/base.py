"""What the torch backend knows about one op: a `TorchRule`, and the helpers rules share.

Rules are framework-free (they describe modules, they do not make them), so `xgraph ops`
and weight-file checks read them without importing torch. Torch's layouts are the
channels-first ones of `xgraph.weights.layouts`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import Shape
from xgraph.ops.fields import Padding
from xgraph.ops.windows import resolve_padding
from xgraph.weights.layouts import (
    depthwise_from_grouped,
    depthwise_to_grouped,
    kernel_from_channels_first,
    kernel_to_channels_first,
    same,
)

if TYPE_CHECKING:
    from numpy import ndarray

NN = "torch.nn"
LAYERS = "xgraph_torch.layers"

Lowering = Callable[[AnalysedGraph, Node], LayerCall | None]


@dataclass(frozen=True)
class TorchSlot:
    """Where a canonical parameter lives in a node's module (`depthwise.weight`), and how
    its layout converts: `from_torch` also gets the canonical shape to restore."""

    attribute: str
    to_torch: Callable[[ndarray], ndarray]
    from_torch: Callable[[ndarray, Shape], ndarray]


@dataclass(frozen=True)
class TorchRule:
    """An op in torch: the module description a node becomes (None: no module, an input),
    and the slot of each canonical parameter, by the names the op's definition gives."""

    lower: Lowering
    weights: Mapping[str, TorchSlot] = field(default_factory=dict)

    @property
    def weight_names(self) -> frozenset[str]:
        """The canonical parameters this rule places (checked before a build)."""
        return frozenset(self.weights)


def _matrix(array: ndarray, shape: Shape | None = None) -> ndarray:
    return array.T


def vector(attribute: str) -> TorchSlot:
    """A per-channel vector, the same in both layouts (biases, BatchNorm's terms)."""
    return TorchSlot(attribute, same, same)


def conv_kernel(attribute: str) -> TorchSlot:
    return TorchSlot(attribute, kernel_to_channels_first, kernel_from_channels_first)


def depthwise_kernel(attribute: str) -> TorchSlot:
    return TorchSlot(attribute, depthwise_to_grouped, depthwise_from_grouped)


def dense_kernel(attribute: str) -> TorchSlot:
    return TorchSlot(attribute, _matrix, _matrix)


def channels(analysed: AnalysedGraph, node: Node) -> int:
    """The channels (last axis) of the node's first input."""
    return analysed.input_shape_of(node)[0][-1]


def padding(
    analysed: AnalysedGraph,
    node: Node,
    spec_padding: Padding,
    kernel: tuple[int, int],
    strides: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
) -> dict[str, tuple[int, ...]]:
    """The node's `padding` attribute, `spec_padding`, as torch's symmetric `padding` where it
    suffices, else an explicit (l, r, t, b) `pad`."""
    height, width = analysed.input_shape_of(node)[0][:2]
    (top, bottom), (left, right) = resolve_padding(
        spec_padding, (height, width), kernel, strides, dilation
    )
    if top == bottom and left == right:
        return {"padding": (top, left)}
    return {"padding": (0, 0), "pad": (left, right, top, bottom)}
