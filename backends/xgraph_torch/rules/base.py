"""What the torch backend knows about one op: a `TorchRule`, and the helpers rules share.

Rules are framework-free (they describe modules, they do not make them), so `xgraph ops`
and weight-file checks read them without importing torch. Canonical kernels are
(kh, kw, in, out), torch's (out, in, kh, kw); a depthwise kernel (kh, kw, in, m) is torch's
grouped kernel (in*m, 1, kh, kw), output channel c*m + j.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from xgraph.analysis import AnalysedGraph
from xgraph.graph import Node
from xgraph.lowering import LayerCall
from xgraph.ops.base import Shape
from xgraph.ops.windows import resolve_padding

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


def _same(array: ndarray, shape: Shape | None = None) -> ndarray:
    return array


def _kernel_to_torch(array: ndarray) -> ndarray:
    return array.transpose(3, 2, 0, 1)


def _kernel_from_torch(array: ndarray, shape: Shape) -> ndarray:
    return array.transpose(2, 3, 1, 0)


def _depthwise_to_torch(array: ndarray) -> ndarray:
    kh, kw, channels, multiplier = array.shape
    return array.reshape(kh, kw, channels * multiplier).transpose(2, 0, 1)[:, None]


def _depthwise_from_torch(array: ndarray, shape: Shape) -> ndarray:
    return array[:, 0].transpose(1, 2, 0).reshape(shape)


def _matrix(array: ndarray, shape: Shape | None = None) -> ndarray:
    return array.T


def vector(attribute: str) -> TorchSlot:
    """A per-channel vector, the same in both layouts (biases, BatchNorm's terms)."""
    return TorchSlot(attribute, _same, _same)


def conv_kernel(attribute: str) -> TorchSlot:
    return TorchSlot(attribute, _kernel_to_torch, _kernel_from_torch)


def depthwise_kernel(attribute: str) -> TorchSlot:
    return TorchSlot(attribute, _depthwise_to_torch, _depthwise_from_torch)


def dense_kernel(attribute: str) -> TorchSlot:
    return TorchSlot(attribute, _matrix, _matrix)


def channels_first_dim(axis: int, rank: int) -> int:
    """A spec axis over (H, W, C) (batch excluded) as a dim of the (N, C, H, W) tensor."""
    axis %= rank
    return 1 if axis == rank - 1 else axis + 2


def channels(analysed: AnalysedGraph, node: Node) -> int:
    """The channels (last axis) of the node's first input."""
    return analysed.input_shape_of(node)[0][-1]


def padding(
    analysed: AnalysedGraph,
    node: Node,
    kernel: tuple[int, int],
    strides: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
) -> dict:
    """torch's symmetric `padding` where it suffices, else an explicit (l, r, t, b) `pad`."""
    height, width = analysed.input_shape_of(node)[0][:2]
    (top, bottom), (left, right) = resolve_padding(
        node.attrs.padding, (height, width), kernel, strides, dilation
    )
    if top == bottom and left == right:
        return {"padding": (top, left)}
    return {"padding": (0, 0), "pad": (left, right, top, bottom)}
