"""What the torch backend knows about one op: a `TorchRule`, and the helpers rules share.

Rules are framework-free (they describe modules, they do not make them), so `xgraph ops`
and weight-file checks read them without importing torch. Weights sit in the one slot
type of every backend (`xgraph.weights.slots`), in torch's channels-first layouts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import cast

from xgraph.backend.lowering import LayerCall
from xgraph.backend.rules import op_rules
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.fields import Padding
from xgraph.ops.windows import resolve_padding
from xgraph.weights.slots import (
    WeightSlot,
    channels_first_kernel,
    grouped_depthwise_kernel,
    kept,
    transposed_matrix,
)

NN = "torch.nn"
LAYERS = "xgraph_torch.layers"

Lowering = Callable[[AnalysedGraph, Node], LayerCall | None]


@dataclass(frozen=True)
class TorchRule:
    """An op in torch: the module description a node becomes (None: no module, an input),
    and the slot of each canonical parameter, by the names the op's definition gives: its
    key is the attribute path inside the node's module (`depthwise.weight`)."""

    lower: Lowering
    weights: Mapping[str, WeightSlot] = field(default_factory=dict)


def torch_rules() -> Mapping[str, TorchRule]:
    """Every op's torch rule, built-in and plugins', typed as the TorchRules that the
    `xgraph.op_rules` entry points register for torch."""
    return cast(Mapping[str, TorchRule], op_rules("torch"))


def vector(attribute: str) -> WeightSlot:
    """A per-channel vector, the same in both layouts (biases, BatchNorm's terms)."""
    return kept(attribute, 1)


def conv_kernel(attribute: str) -> WeightSlot:
    return channels_first_kernel(attribute)


def depthwise_kernel(attribute: str) -> WeightSlot:
    return grouped_depthwise_kernel(attribute)


def dense_kernel(attribute: str) -> WeightSlot:
    return transposed_matrix(attribute)


def channels(analysed: AnalysedGraph, node: Node) -> int:
    """The channels (last axis) of the node's first input."""
    return analysed.input_shape_of(node)[0][-1]


def _same_at_every_size(kernel: tuple[int, int], strides: tuple[int, int]) -> bool:
    """Whether 'same' pads every input size alike: stride 1, or a 1x1 window, on each axis."""
    return all(s == 1 or k == 1 for k, s in zip(kernel, strides, strict=True))


def padding(
    analysed: AnalysedGraph,
    node: Node,
    spec_padding: Padding,
    kernel: tuple[int, int],
    strides: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
) -> dict[str, tuple[int, ...] | str]:
    """The node's `padding` attribute, `spec_padding`, as torch's symmetric `padding` where it
    suffices, else a `pad` for xgraph's layers: fixed (l, r, t, b) amounts, or "same" where
    the amounts depend on the input's size (a strided window), so that a module built for one
    size computes TensorFlow's padding at any other."""
    if spec_padding == "same" and not _same_at_every_size(kernel, strides):
        return {"padding": (0, 0), "pad": "same"}
    height, width = analysed.input_shape_of(node)[0][:2]
    (top, bottom), (left, right) = resolve_padding(
        spec_padding, (height, width), kernel, strides, dilation
    )
    if top == bottom and left == right:
        return {"padding": (top, left)}
    return {"padding": (0, 0), "pad": (left, right, top, bottom)}
