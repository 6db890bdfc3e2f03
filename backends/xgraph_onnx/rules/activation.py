"""Activations in ONNX: the one table of the spec's activation names, used by the
`activation` op and by the activations fused into convolutions and dense layers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.activation import ActivationAttrs
from xgraph.ops.base import attrs_of
from xgraph.weights.slots import WeightSlot
from xgraph_onnx.rules.base import Lowered, OnnxNode, OnnxRule, constant, inner, weight

if TYPE_CHECKING:
    from numpy import ndarray


def activation_nodes(node: Node, name: str, source: str, output: str) -> Lowered:
    """The ONNX nodes computing activation `name` from `source` into `output`. Softmax is
    over the channels, dim 1 of the NCHW value; Keras's hard_sigmoid is relu6(x + 3) / 6."""
    if name == "linear":
        return Lowered([OnnxNode("Identity", (source,), (output,))])
    if name == "relu6":
        return Lowered(
            [OnnxNode("Clip", (source, constant(node, "zero"), constant(node, "six")), (output,))],
            {constant(node, "zero"): 0.0, constant(node, "six"): 6.0},
        )
    if name == "swish":
        gate = inner(node, "sigmoid")
        return Lowered(
            [
                OnnxNode("Sigmoid", (source,), (gate,)),
                OnnxNode("Mul", (source, gate), (output,)),
            ]
        )
    single: dict[str, tuple[str, dict[str, Any]]] = {
        "relu": ("Relu", {}),
        "sigmoid": ("Sigmoid", {}),
        "hard_sigmoid": ("HardSigmoid", {"alpha": 1.0 / 6.0, "beta": 0.5}),
        "hard_swish": ("HardSwish", {}),
        "tanh": ("Tanh", {}),
        "softmax": ("Softmax", {"axis": 1}),
        "gelu": ("Gelu", {}),  # exact (approximate="none"): opset 20
        "gelu_tanh": ("Gelu", {"approximate": "tanh"}),
    }
    op_type, attrs = single[name]
    return Lowered([OnnxNode(op_type, (source,), (output,), attrs)])


def then_activate(node: Node, lowered: Lowered, activation: str) -> Lowered:
    """`lowered` (whose last output is `<node>/pre`) followed by the activation into the
    node's own name; without an activation, `lowered` renamed to end in the node's name."""
    last = lowered.nodes[-1]
    if activation == "linear":
        renamed = OnnxNode(last.op_type, last.inputs, (node.name,), last.attrs)
        return Lowered([*lowered.nodes[:-1], renamed], lowered.constants)
    tail = activation_nodes(node, activation, last.outputs[0], node.name)
    return Lowered([*lowered.nodes, *tail.nodes], {**lowered.constants, **tail.constants})


def lower_activation(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    activation = attrs_of(node, ActivationAttrs).activation
    return activation_nodes(node, activation, inputs[0], node.name)


def lower_prelu(analysed: AnalysedGraph, node: Node, inputs: tuple[str, ...]) -> Lowered:
    return Lowered([OnnxNode("PRelu", (inputs[0], weight(node, "alpha")), (node.name,))])


def _alpha_to_onnx(array: ndarray) -> ndarray:
    # Keras's (1, 1, C) or (C,) as (C, 1, 1) or (C,): broadcast against NCHW from the right.
    channels = array.shape[-1]
    return array.reshape(channels, *([1] * (array.ndim - 1)))


RULES = {
    "activation": OnnxRule(lower_activation),
    "prelu": OnnxRule(
        lower_prelu, {"alpha": WeightSlot("", _alpha_to_onnx, lambda a, shape: a.reshape(shape))}
    ),
}
