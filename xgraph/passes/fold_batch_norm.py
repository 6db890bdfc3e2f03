"""An inference pass: BatchNorm folded into the convolution or dense layer before it.

y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta is itself a convolution, with the
kernel scaled per output channel and a new bias. The folded graph computes the same function
in inference mode, with one op fewer per pair; it does not train like the original (the
BatchNorm statistics are gone), so it is never the default.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.base import attrs_of
from xgraph.ops.norm import BatchNormAttrs
from xgraph.passes.rewrite import Rewritten, merge_into, sole_reader
from xgraph.weights.initial import Weights, weight_key


def _foldable_producer(analysed: AnalysedGraph, norm: Node) -> Node | None:
    """The node before `norm` if its op says how a BatchNorm folds into it (`OpDef.
    batch_norm_fold`), nothing else reads it, and no activation comes between them."""
    producer = analysed.graph[norm.inputs[0]]
    if (
        producer.opdef.batch_norm_fold is not None
        and getattr(producer.attrs, "activation", "linear") == "linear"
        and sole_reader(analysed.graph, producer.name, norm.name)
    ):
        return producer
    return None


def _folded_weights(producer: Node, norm: Node, weights: Weights) -> dict[str, np.ndarray]:
    def get(node: Node, param: str, default: float, size: int) -> np.ndarray:
        key = weight_key(node.name, param)
        return weights[key].astype(np.float64) if key in weights else np.full(size, default)

    channels = weights[weight_key(norm.name, "moving_mean")].shape[0]
    scale = get(norm, "gamma", 1.0, channels) / np.sqrt(
        get(norm, "moving_variance", 1.0, channels) + attrs_of(norm, BatchNormAttrs).epsilon
    )
    bias = get(producer, "bias", 0.0, channels)
    folded = {
        key.split("/", 1)[1]: value
        for key, value in weights.items()
        if key.split("/", 1)[0] == producer.name
    }
    fold = producer.opdef.batch_norm_fold
    assert fold is not None  # _foldable_producer picks only producers whose op has one
    kernel = folded[fold.kernel].astype(np.float64)
    # The output channel is the flattened last `channel_axes` axes: c * multiplier + j for a
    # depthwise kernel (kh, kw, in, multiplier).
    kernel = kernel * scale.reshape(kernel.shape[-fold.channel_axes :])
    folded[fold.kernel] = kernel.astype(np.float32)
    mean = get(norm, "moving_mean", 0.0, channels)
    folded["bias"] = (get(norm, "beta", 0.0, channels) + (bias - mean) * scale).astype(np.float32)
    return folded


def fold_batch_norm(analysed: AnalysedGraph, weights: Weights) -> Rewritten:
    """The graph without the BatchNorm nodes that can be folded, and its weights."""
    replaced: dict[str, str] = {}  # folded BatchNorm -> the node that now computes it
    new_weights = dict(weights)
    changed: dict[str, Node] = {}
    for norm in analysed.graph.nodes:
        if norm.op != "batch_norm":
            continue
        producer = _foldable_producer(analysed, norm)
        if producer is None:
            continue
        for param, value in _folded_weights(producer, norm, weights).items():
            new_weights[weight_key(producer.name, param)] = value
        for spec in analysed.counts[norm.name].params:
            del new_weights[weight_key(norm.name, spec.name)]
        attrs = producer.attrs.model_copy(update={"use_bias": True})
        changed[producer.name] = dataclasses.replace(producer, attrs=attrs)
        replaced[norm.name] = producer.name
    return Rewritten(merge_into(analysed, replaced, changed), new_weights, replaced)
