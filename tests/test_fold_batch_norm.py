"""Folding BatchNorm into the layer before it: same function in inference, fewer nodes."""

from __future__ import annotations

import numpy as np
import pytest

from xgraph.api import load, loads
from xgraph.backend import load_backend
from xgraph.passes.fold_batch_norm import fold_batch_norm
from xgraph.weights.initial import random_weights

PAIRS = {
    "conv2d": "{op: conv2d, filters: 4, kernel_size: 3, strides: 2, padding: same}",
    "depthwise_conv2d": "{op: depthwise_conv2d, kernel_size: 3, depth_multiplier: 2}",
    "separable_conv2d": "{op: separable_conv2d, filters: 5, kernel_size: 3, use_bias: false}",
    "dense": "{op: dense, units: 6}",
}


def _pair_spec(layer: str, norm: str = "{op: batch_norm, center: false, epsilon: 0.01}") -> str:
    return (
        "xgraph: 1\nname: pair\ninputs: [{name: x, shape: [9, 9, 3]}]\n"
        f"nodes:\n  - {layer}\n  - {norm}\n  - {{op: activation, activation: relu}}\n"
    )


def _outputs(analysed, weights, backend_name: str) -> np.ndarray:
    backend = load_backend(backend_name)
    x = np.random.default_rng(0).normal(size=(2, *analysed.input_shapes()[0]))
    return backend.predict(backend.build(analysed, weights), [x.astype(np.float32)])[0]


@pytest.mark.parametrize("op", sorted(PAIRS))
def test_folded_pair_computes_the_same_function(op: str) -> None:
    analysed = loads(_pair_spec(PAIRS[op]))
    weights = random_weights(analysed, seed=5)
    result = fold_batch_norm(analysed, weights)
    folded, folded_weights = result.analysed, result.weights
    assert [n.op for n in folded.graph.nodes] == ["input", op, "activation"]
    expected = _outputs(analysed, weights, "torch")
    got = _outputs(folded, folded_weights, "torch")
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


def test_xception_folds_all_forty_batch_norms_in_both_backends() -> None:
    analysed = load("specs/xception.yaml", ["input_shape=[71,71,3]", "classifier_activation=none"])
    weights = random_weights(analysed, seed=2)
    result = fold_batch_norm(analysed, weights)
    folded, folded_weights = result.analysed, result.weights
    assert len(analysed.graph) - len(folded.graph) == 40
    assert folded.non_trainable_params == 0
    for backend in ("torch", "keras"):
        expected = _outputs(analysed, weights, backend)
        got = _outputs(folded, folded_weights, backend)
        assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max(), backend


def test_no_fold_after_an_activation_or_a_shared_output() -> None:
    activated = loads(_pair_spec("{op: conv2d, filters: 4, kernel_size: 3, activation: relu}"))
    assert len(fold_batch_norm(activated, random_weights(activated)).analysed.graph) == 4
    shared = loads(
        "xgraph: 1\nname: shared\ninputs: [{name: x, shape: [5, 5, 3]}]\nnodes:\n"
        "  - {name: c, op: conv2d, filters: 3, kernel_size: 1}\n"
        "  - {name: n, op: batch_norm}\n"
        "  - {op: add, inputs: [n, c]}\n"
    )
    assert len(fold_batch_norm(shared, random_weights(shared)).analysed.graph) == 4
