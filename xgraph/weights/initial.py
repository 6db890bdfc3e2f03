"""Initial weights, made once in the canonical layout and then given to every backend.

Both backends start from the very same numbers for a seed, so a model trains alike from
scratch in either. The default scheme is Keras's: Glorot-uniform kernels, zero biases, BN gamma
1 and beta 0, moving mean 0 and moving variance 1.
"""

from __future__ import annotations

import math

import numpy as np

from xgraph.ir.analysis import AnalysedGraph
from xgraph.ops.base import ParamSpec, Shape
from xgraph.ops.initializers import KERNEL_INITIALIZERS

Weights = dict[str, np.ndarray]


def weight_key(node: str, param: str) -> str:
    """The canonical name of one tensor: `block2_sepconv1/depthwise_kernel`."""
    return f"{node}/{param}"


def fans(shape: Shape) -> tuple[int, int]:
    """Keras's fan-in and fan-out: kernels are (..., in, out) and spatial axes multiply both."""
    if len(shape) < 2:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _uniform(limit: float, shape: Shape, rng: np.random.Generator) -> np.ndarray:
    values = rng.random(shape, dtype=np.float32)
    values *= np.float32(2 * limit)
    values -= np.float32(limit)
    return values


def _kernel(scheme: str, shape: Shape, rng: np.random.Generator) -> np.ndarray:
    """A float32 draw, made in place: a kernel at the size budget's edge must not need twice
    (float64) or three times its size in temporaries."""
    fan_in, fan_out = fans(shape)
    if scheme == "glorot_uniform":
        return _uniform(math.sqrt(6.0 / (fan_in + fan_out)), shape, rng)
    if scheme == "he_uniform":
        return _uniform(math.sqrt(6.0 / fan_in), shape, rng)
    scale = {
        "glorot_normal": 2.0 / (fan_in + fan_out),
        "he_normal": 2.0 / fan_in,
        "lecun_normal": 1.0 / fan_in,
    }[scheme]
    # Keras draws normal initialisers from a normal truncated at two standard deviations.
    stddev = math.sqrt(scale) / 0.87962566103423978
    values = rng.standard_normal(shape, dtype=np.float32)
    while np.any(outside := np.abs(values) > 2):
        values[outside] = rng.standard_normal(int(outside.sum()), dtype=np.float32)
    values *= np.float32(stddev)
    return values


def initial_value(param: ParamSpec, scheme: str, rng: np.random.Generator) -> np.ndarray:
    """The op's own choice (`ParamSpec.init`): a constant, or a draw from the kernel scheme."""
    if param.init == "zeros":
        return np.zeros(param.shape, dtype=np.float32)
    if param.init == "ones":
        return np.ones(param.shape, dtype=np.float32)
    if isinstance(param.init, float):
        return np.full(param.shape, param.init, dtype=np.float32)
    return _kernel(scheme, param.shape, rng)


def initial_weights(
    analysed: AnalysedGraph, seed: int | None = None, scheme: str | None = None
) -> Weights:
    """Every weight of the graph, keyed canonically, drawn from one seeded generator.

    `scheme` names the kernel initialiser; by default the spec's (`initializer:`)."""
    scheme = scheme or analysed.graph.initializer
    if scheme not in KERNEL_INITIALIZERS:
        raise ValueError(f"unknown initializer '{scheme}'")
    rng = np.random.default_rng(seed)
    return {
        weight_key(node.name, param.name): initial_value(param, scheme, rng)
        for node in analysed.graph.nodes
        for param in analysed.counts[node.name].params
    }


def random_weights(analysed: AnalysedGraph, seed: int | None = 0) -> Weights:
    """Initial weights with randomised BatchNorm parameters and statistics as well.

    Default statistics (mean 0, variance 1) make BatchNorm an identity and hide its bugs
    (epsilon, momentum, layout); parity checks use these instead.
    Constant parameters become random around their constant: ones (scales, variances) uniform
    in [0.5, 1.5], zeros (shifts, means, biases) normal with standard deviation 0.1; an op's
    own constant (LayerScale's 1e-6, which would hide the branch it scales) as ones.
    """
    rng = np.random.default_rng(seed)
    weights = initial_weights(analysed, seed=None if seed is None else seed + 1)
    for node in analysed.graph.nodes:
        for param in analysed.counts[node.name].params:
            key = weight_key(node.name, param.name)
            if param.integer:  # a count: a whole number, as a framework holds it
                weights[key] = np.asarray(rng.integers(0, 1000, param.shape), dtype=np.float32)
            elif param.init == "ones" or isinstance(param.init, float):
                weights[key] = rng.uniform(0.5, 1.5, param.shape).astype(np.float32)
            elif param.init == "zeros":
                weights[key] = rng.normal(0.0, 0.1, param.shape).astype(np.float32)
    return weights
