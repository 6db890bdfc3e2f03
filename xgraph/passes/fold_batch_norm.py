"""An inference optimisation: BatchNorm folded into the convolution or dense layer before it.

y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta is itself a convolution, with the
kernel scaled per output channel and a new bias. The folded graph computes the same function
in inference mode, with one op fewer per pair; it does not train like the original (the
BatchNorm statistics are gone), so it is never the default.
"""

from __future__ import annotations

import numpy as np

from xgraph.analysis import AnalysedGraph, analyse
from xgraph.graph import Graph, Node
from xgraph.init import Weights, weight_key


def _foldable_producer(analysed: AnalysedGraph, norm: Node) -> Node | None:
    """The node before `norm` if its op says how a BatchNorm folds into it (`OpDef.
    batch_norm_fold`), nothing else reads it, and no activation comes between them."""
    graph = analysed.graph
    producer = graph[norm.inputs[0]]
    if (
        producer.opdef.batch_norm_fold is not None
        and getattr(producer.attrs, "activation", "linear") == "linear"
        and graph.consumers(producer.name) == [norm.name]
        and producer.name not in graph.outputs
        and norm.name not in graph.outputs
    ):
        return producer
    return None


def _folded_weights(producer: Node, norm: Node, weights: Weights) -> dict[str, np.ndarray]:
    def get(node: Node, param: str, default: float, size: int) -> np.ndarray:
        key = weight_key(node.name, param)
        return weights[key].astype(np.float64) if key in weights else np.full(size, default)

    channels = weights[weight_key(norm.name, "moving_mean")].shape[0]
    scale = get(norm, "gamma", 1.0, channels) / np.sqrt(
        get(norm, "moving_variance", 1.0, channels) + norm.attrs.epsilon
    )
    bias = get(producer, "bias", 0.0, channels)
    folded = {
        key.split("/", 1)[1]: value
        for key, value in weights.items()
        if key.split("/", 1)[0] == producer.name
    }
    fold = producer.opdef.batch_norm_fold
    kernel = folded[fold.kernel].astype(np.float64)
    # The output channel is the flattened last `channel_axes` axes: c * multiplier + j for a
    # depthwise kernel (kh, kw, in, multiplier).
    kernel = kernel * scale.reshape(kernel.shape[-fold.channel_axes :])
    folded[fold.kernel] = kernel.astype(np.float32)
    mean = get(norm, "moving_mean", 0.0, channels)
    folded["bias"] = (get(norm, "beta", 0.0, channels) + (bias - mean) * scale).astype(np.float32)
    return folded


def fold_batch_norm(analysed: AnalysedGraph, weights: Weights) -> tuple[AnalysedGraph, Weights]:
    """The graph without the BatchNorm nodes that can be folded, and its weights."""
    graph = analysed.graph
    replaced: dict[str, str] = {}  # folded BatchNorm -> the node that now computes it
    new_weights = dict(weights)
    changed: dict[str, Node] = {}
    for norm in graph.nodes:
        if norm.op != "batch_norm":
            continue
        producer = _foldable_producer(analysed, norm)
        if producer is None:
            continue
        for param, value in _folded_weights(producer, norm, weights).items():
            new_weights[weight_key(producer.name, param)] = value
        for param in analysed.counts[norm.name].params:
            del new_weights[weight_key(norm.name, param.name)]
        changed[producer.name] = Node(
            name=producer.name,
            op=producer.op,
            attrs=producer.attrs.model_copy(update={"use_bias": True}),
            inputs=producer.inputs,
            location=producer.location,
            block=producer.block,
            attr_locations=producer.attr_locations,
        )
        replaced[norm.name] = producer.name
    nodes = []
    for node in graph.nodes:
        if node.name in replaced:
            continue
        node = changed.get(node.name, node)
        if any(source in replaced for source in node.inputs):
            inputs = tuple(replaced.get(source, source) for source in node.inputs)
            node = Node(
                node.name,
                node.op,
                node.attrs,
                inputs,
                node.location,
                node.block,
                node.attr_locations,
            )
        nodes.append(node)
    folded = Graph(graph.name, nodes, graph.inputs, graph.outputs, graph.initializer)
    return analyse(folded, analysed.params), new_weights
