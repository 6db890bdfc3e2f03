"""What the ONNX backend knows about one op: an `OnnxRule`, and the helpers rules share.

A lowering returns the ONNX nodes one graph node becomes, as plain data (`OnnxNode`), plus
the constants they need; the node's last output carries the node's name, so every value of
the graph is addressable by node name, as the spec's are. Tensors are NCHW inside the model,
as ONNX's convolution and pooling operators require.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

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
)


@dataclass(frozen=True)
class OnnxNode:
    """`onnx.helper.make_node(op_type, inputs, outputs, **attrs)`, as data."""

    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Lowered:
    """The ONNX nodes of one graph node and the constants (initializers) they read, by name;
    weights are not here: they come from the canonical weights through the rule's slots."""

    nodes: list[OnnxNode]
    constants: dict[str, Any] = field(default_factory=dict)  # name -> (dtype, values) list


Lowering = Callable[[AnalysedGraph, Node, tuple[str, ...]], Lowered]


@dataclass(frozen=True)
class OnnxRule:
    """An op in ONNX: its lowering (analysed graph, node, the names of its input values) and
    the slot of each canonical parameter, whose initializer is named `<node>/<param>`."""

    lower: Lowering
    weights: Mapping[str, WeightSlot] = field(default_factory=dict)


def onnx_rules() -> Mapping[str, OnnxRule]:
    """Every op's onnx rule, built-in and plugins', typed as the OnnxRules that the
    `xgraph.op_rules` entry points register for onnx."""
    return cast(Mapping[str, OnnxRule], op_rules("onnx"))


def weight(node: Node, param: str) -> str:
    """The initializer of a canonical parameter: named as the canonical weight is."""
    return f"{node.name}/{param}"


def inner(node: Node, step: str) -> str:
    """The name of an intermediate value of a node made of several ONNX nodes."""
    return f"{node.name}/{step}"


def constant(node: Node, step: str) -> str:
    """The name of a constant a node's ONNX nodes read (pads, bounds): kept apart from the
    weights (`<node>/<param>`), so counting a model's weights counts only weights."""
    return f"{node.name}/const/{step}"


VECTOR = kept(rank=1)
CONV_KERNEL = channels_first_kernel()
DEPTHWISE_KERNEL = grouped_depthwise_kernel()
MATRIX = kept(rank=2)  # dense kernels stay (in, out): MatMul takes them so


def channels(analysed: AnalysedGraph, node: Node) -> int:
    return analysed.input_shape_of(node)[0][-1]


def rank(analysed: AnalysedGraph, node: Node) -> int:
    """The rank of the node's first input, batch excluded: 3 for images."""
    return len(analysed.input_shape_of(node)[0])


def onnx_pads(
    analysed: AnalysedGraph,
    node: Node,
    spec_padding: Padding,
    kernel: tuple[int, int],
    strides: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
) -> list[int]:
    """The node's `padding` attribute, `spec_padding` (TensorFlow's), as ONNX's pads:
    [top, left, bottom, right], asymmetric or not."""
    height, width = analysed.input_shape_of(node)[0][:2]
    (top, bottom), (left, right) = resolve_padding(
        spec_padding, (height, width), kernel, strides, dilation
    )
    return [top, left, bottom, right]


def to_channels_last(node: Node, source: str, rank: int) -> tuple[OnnxNode, str]:
    """A Transpose of an NCHW value to NHWC (for ops defined on the channels-last layout)."""
    target = inner(node, "nhwc")
    perm = [0, *range(2, rank + 1), 1]
    return OnnxNode("Transpose", (source,), (target,), {"perm": perm}), target


def to_channels_first(node: Node, source: str, rank: int, output: str) -> OnnxNode:
    perm = [0, rank, *range(1, rank)]
    return OnnxNode("Transpose", (source,), (output,), {"perm": perm})
