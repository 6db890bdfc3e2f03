"""Dense layers, flatten and dropout in Keras."""

from __future__ import annotations

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.dense import DenseAttrs, DropoutAttrs, StochasticDepthAttrs
from xgraph_keras.rules.activation import keras_activation
from xgraph_keras.rules.base import KerasRule, layer, weights


def lower_dense(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    a = attrs_of(node, DenseAttrs)
    activation = keras_activation(a.activation)
    return [layer(node, "Dense", units=a.units, activation=activation, use_bias=a.use_bias)]


def lower_flatten(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    return [layer(node, "Flatten")]


def lower_dropout(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    a = attrs_of(node, DropoutAttrs)
    if a.noise_shape is None:
        return [layer(node, "Dropout", rate=a.rate)]
    return [layer(node, "Dropout", rate=a.rate, noise_shape=[None, *a.noise_shape])]


def lower_stochastic_depth(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    """Keras's Dropout with one draw per example computes drop-path (keras.applications'
    ConvNeXt StochasticDepth: the same mask and 1 / (1 - rate) scale), and loads anywhere."""
    rank = len(analysed.input_shape_of(node)[0])
    rate = attrs_of(node, StochasticDepthAttrs).rate
    return [layer(node, "Dropout", rate=rate, noise_shape=[None, *(1,) * rank])]


RULES = {
    "dense": KerasRule(lower_dense, "Dense", weights(("kernel", 2), ("bias", 1))),
    "flatten": KerasRule(lower_flatten),
    "dropout": KerasRule(lower_dropout),
    "stochastic_depth": KerasRule(lower_stochastic_depth),
}
