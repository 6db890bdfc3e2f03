"""Every backend, op by op, over every registered op (built-in and plugin): each backend has a
rule for the op, converts its weights both ways, matches the analysis's shapes and counts,
and computes the same numbers as the others from the same weights."""

from __future__ import annotations

import numpy as np
import pytest
from backend_cases import case_ids, one_op_spec

from xgraph.api import loads
from xgraph.backend import available_backends, load_backend
from xgraph.ops import REGISTRY
from xgraph.weights.initial import initial_weights, random_weights

BACKENDS = ["keras", "torch"]


@pytest.fixture(scope="module")
def backends() -> dict:
    return {name: load_backend(name) for name in available_backends()}


def test_both_backends_are_installed_entry_points() -> None:
    assert set(BACKENDS) <= set(available_backends())


@pytest.mark.parametrize("op", sorted(REGISTRY))
def test_every_backend_lowers_every_op_and_converts_its_weights(backends: dict, op: str) -> None:
    """The registry walk: a rule in every installed backend, at least one one-op parity
    example, and weights that survive canonical -> backend -> canonical for each example."""
    opdef = REGISTRY[op]
    assert opdef.examples, f"op '{op}' ({opdef.origin}) has no example, so no parity case"
    for name, backend in backends.items():
        assert op in backend.rules, f"the {name} backend has no rule for '{op}' ({opdef.origin})"
        for example in opdef.examples:
            analysed = loads(one_op_spec(op, example.id))
            weights = random_weights(analysed, seed=3)
            back = backend.get_weights(backend.build(analysed, weights), analysed)
            assert back.keys() == weights.keys(), (name, example.id)
            for key, value in weights.items():
                np.testing.assert_array_equal(back[key], value, err_msg=f"{name}: {key}")


@pytest.mark.parametrize(("op", "case"), case_ids())
def test_one_op_graph_matches_analysis_in_both_backends(backends: dict, op: str, case: str) -> None:
    analysed = loads(one_op_spec(op, case))
    weights = random_weights(analysed, seed=7)
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(2, *shape)).astype(np.float32) for shape in analysed.input_shapes()]
    outputs = {}
    for name in BACKENDS:
        backend = backends[name]
        model = backend.build(analysed, weights)
        counts = backend.node_param_counts(model, analysed)
        for node in analysed.graph.nodes:
            expected = analysed.counts[node.name]
            assert counts[node.name] == (expected.trainable, expected.non_trainable), (
                name,
                node.name,
            )
        (output,) = backend.predict(model, inputs)
        assert output.shape == (2, *analysed.shapes["out"]), name
        outputs[name] = output
    scale = max(float(np.abs(outputs["keras"]).max()), 1e-6)
    error = float(np.abs(outputs["torch"] - outputs["keras"]).max()) / scale
    assert error < 1e-5, f"{op}/{case}: torch and keras differ by {error:.2e} (relative)"


def test_same_seed_gives_both_backends_identical_initial_weights(backends: dict) -> None:
    analysed = loads(one_op_spec("separable_conv2d", "multiplier_bias"))
    weights = initial_weights(analysed, seed=11)
    read = {
        name: b.get_weights(b.build(analysed, weights), analysed) for name, b in backends.items()
    }
    for key in weights:
        np.testing.assert_array_equal(read["torch"][key], read["keras"][key])
    assert not np.array_equal(
        weights["out/depthwise_kernel"], initial_weights(analysed, seed=12)["out/depthwise_kernel"]
    )


def test_default_initialisation_is_keras_glorot_uniform() -> None:
    analysed = loads(one_op_spec("conv2d", "valid"))
    kernel = initial_weights(analysed, seed=0)["out/kernel"]
    limit = np.sqrt(6.0 / (3 * 3 * 3 + 3 * 3 * 4))
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.9 * limit
    assert not initial_weights(analysed, seed=0)["out/bias"].any()


def test_torch_lowering_translates_keras_batch_norm_terms(backends: dict) -> None:
    analysed = loads(one_op_spec("batch_norm", "default"))
    call = backends["torch"].lower(analysed, analysed.graph["out"])
    assert (call.cls, call.kwargs["eps"], call.kwargs["momentum"]) == ("BatchNorm", 1e-3, 0.01)
    (keras_call,) = backends["keras"].lower(analysed, analysed.graph["out"])
    assert (keras_call.kwargs["epsilon"], keras_call.kwargs["momentum"]) == (1e-3, 0.99)


def test_torch_lowering_pads_strided_same_from_the_input_size(backends: dict) -> None:
    """'same' whose amounts change with the input's size is worked out at run time."""
    analysed = loads(one_op_spec("max_pool2d", "same_asymmetric"))
    call = backends["torch"].lower(analysed, analysed.graph["out"])
    assert call.kwargs["pad"] == "same"
    assert call.kwargs["padding"] == (0, 0)


def test_spec_names_the_initializer_and_init_overrides_it() -> None:
    spec = one_op_spec("conv2d", "valid").replace("xgraph: 1", "xgraph: 1\ninitializer: he_uniform")
    analysed = loads(spec)
    assert analysed.graph.initializer == "he_uniform"
    limit_he = np.sqrt(6.0 / (3 * 3 * 3))
    kernel = initial_weights(analysed, seed=0)["out/kernel"]
    assert 0.9 * limit_he < np.abs(kernel).max() <= limit_he
    glorot = initial_weights(analysed, seed=0, scheme="glorot_uniform")["out/kernel"]
    assert np.abs(glorot).max() <= np.sqrt(6.0 / (3 * 3 * 3 + 3 * 3 * 4))


@pytest.mark.parametrize("name", ["torch", "keras", "onnx"])
def test_gelu_tanh_is_the_tanh_approximation(name: str) -> None:
    """`gelu_tanh` computes 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), not the exact
    GELU (they differ by up to 5e-4 on this input; every backend is within 1e-6 of it)."""
    analysed = loads(one_op_spec("activation", "gelu_tanh"))
    backend = load_backend(name)
    x = np.linspace(-6, 6, 2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    (got,) = backend.predict(backend.build(analysed, random_weights(analysed, seed=1)), [x])
    cubic = np.sqrt(2 / np.pi) * (x + 0.044715 * x.astype(np.float64) ** 3)
    np.testing.assert_allclose(got, 0.5 * x * (1 + np.tanh(cubic)), rtol=0, atol=1e-6)
