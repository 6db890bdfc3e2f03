"""The generated torch module starts as `xgraph train` does: its kernels have the variance
of the spec's initialiser, with Keras's fans, its biases are zero and its BatchNorms the
identity (the same distributions as xgraph.weights.initial, not the same numbers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import import_source

from xgraph.api import codegen, loads
from xgraph.weights.initial import fans, initial_weights

SPEC = """\
xgraph: 1
name: init_net
initializer: {scheme}
inputs:
  - {{name: image, shape: [16, 16, 24]}}
nodes:
  - {{name: conv, op: conv2d, filters: 96, kernel_size: 3, padding: same}}
  - {{name: conv_bn, op: batch_norm}}
  - {{name: sep, op: separable_conv2d, filters: 128, kernel_size: 3, depth_multiplier: 2,
     padding: same}}
  - {{name: dw, op: depthwise_conv2d, kernel_size: 5, depth_multiplier: 4, padding: same}}
  - {{name: pool, op: global_avg_pool}}
  - {{name: fc, op: dense, units: 300}}
"""

# The canonical kernel and the generated module's tensor that holds it.
KERNELS = {
    "conv/kernel": "conv.weight",
    "sep/depthwise_kernel": "sep.depthwise.weight",
    "sep/pointwise_kernel": "sep.pointwise.weight",
    "dw/depthwise_kernel": "dw.weight",
    "fc/kernel": "fc.weight",
}
VARIANCE = {
    "glorot_uniform": lambda fan_in, fan_out: 2.0 / (fan_in + fan_out),
    "he_uniform": lambda fan_in, fan_out: 2.0 / fan_in,
    "glorot_normal": lambda fan_in, fan_out: 2.0 / (fan_in + fan_out),
    "he_normal": lambda fan_in, fan_out: 2.0 / fan_in,
    "lecun_normal": lambda fan_in, fan_out: 1.0 / fan_in,
}


@pytest.mark.parametrize("scheme", sorted(VARIANCE))
def test_generated_kernels_have_the_spec_initialisers_variance(scheme: str, tmp_path) -> None:
    analysed = loads(SPEC.format(scheme=scheme))
    module = import_source(codegen(analysed, "torch"), tmp_path, f"init_{scheme}")
    state = module.InitNet().state_dict()
    drawn = initial_weights(analysed, seed=0)
    for canonical, key in KERNELS.items():
        expected = VARIANCE[scheme](*fans(drawn[canonical].shape))
        generated = float(state[key].double().var())
        assert generated == pytest.approx(expected, rel=0.1), (key, generated, expected)
        # the same distribution as `xgraph train` starts from
        assert generated == pytest.approx(float(drawn[canonical].var()), rel=0.15), key


def test_generated_biases_are_zero_and_batch_norms_the_identity(tmp_path: Path) -> None:
    analysed = loads(SPEC.format(scheme="glorot_uniform"))
    module = import_source(codegen(analysed, "torch"), tmp_path, "init_biases")
    state = {key: value.numpy() for key, value in module.InitNet().state_dict().items()}
    for key in ("conv.bias", "sep.pointwise.bias", "dw.bias", "fc.bias", "conv_bn.bias"):
        assert not np.any(state[key]), key
    assert np.all(state["conv_bn.weight"] == 1) and np.all(state["conv_bn.running_var"] == 1)
    assert not np.any(state["conv_bn.running_mean"])


def test_the_generated_module_says_how_it_initialises(tmp_path: Path) -> None:
    source = codegen(loads(SPEC.format(scheme="he_normal")), "torch")
    assert 'init_weights(self, "he_normal")' in source


@pytest.mark.parametrize("scheme", ["glorot_uniform", "he_normal"])
def test_generated_keras_kernels_have_the_spec_initialisers_variance(scheme, tmp_path) -> None:
    """Keras's own initialisers with Keras's fans, passed where the spec's is not the
    default."""
    analysed = loads(SPEC.format(scheme=scheme))
    source = codegen(analysed, "keras")
    assert ("he_normal" in source) == (scheme == "he_normal")
    model = import_source(source, tmp_path, f"init_keras_{scheme}").init_net()
    kernels = [w for w in model.weights if w.path.rsplit("/", 1)[-1].endswith("kernel")]
    assert len(kernels) == len(KERNELS)
    for weight in kernels:
        value = np.asarray(weight.numpy(), dtype=np.float64)
        expected = VARIANCE[scheme](*fans(value.shape))
        assert float(value.var()) == pytest.approx(expected, rel=0.1), weight.path
