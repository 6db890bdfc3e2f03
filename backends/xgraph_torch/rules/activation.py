"""Activations in torch: the one table of torch modules for the spec's activation names,
used by the `activation` op and by the activations fused into convolutions and dense layers."""

from __future__ import annotations

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.activation import ActivationAttrs
from xgraph.ops.base import attrs_of
from xgraph.weights.slots import WeightSlot
from xgraph_torch.rules.base import NN, TorchRule, channels

ACTIVATION_LAYERS = {
    "linear": LayerCall(NN, "Identity"),
    "relu": LayerCall(NN, "ReLU"),
    "relu6": LayerCall(NN, "ReLU6"),
    "sigmoid": LayerCall(NN, "Sigmoid"),
    "hard_sigmoid": LayerCall(NN, "Hardsigmoid"),
    "tanh": LayerCall(NN, "Tanh"),
    "softmax": LayerCall(NN, "Softmax", {"dim": 1}),  # the channel axis of (N, C, ...)
    "swish": LayerCall(NN, "SiLU"),
    "hard_swish": LayerCall(NN, "Hardswish"),
    "gelu": LayerCall(NN, "GELU"),  # exact (approximate="none"), as Keras's "gelu"
    "gelu_tanh": LayerCall(NN, "GELU", {"approximate": "tanh"}),
}


def lower_activation(analysed: AnalysedGraph, node: Node) -> LayerCall:
    return ACTIVATION_LAYERS[attrs_of(node, ActivationAttrs).activation]


def lower_prelu(analysed: AnalysedGraph, node: Node) -> LayerCall:
    return LayerCall(NN, "PReLU", {"num_parameters": channels(analysed, node), "init": 0.0})


RULES = {
    "activation": TorchRule(lower_activation),
    # nn.PReLU holds alpha flat, (C,), where Keras holds (1, 1, C) for images.
    "prelu": TorchRule(
        lower_prelu,
        {"alpha": WeightSlot("weight", lambda a: a.reshape(-1), lambda a, shape: a.reshape(shape))},
    ),
}
