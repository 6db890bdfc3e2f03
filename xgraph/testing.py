"""The per-op checks, for an op plugin's own test suite (xgraph's suite runs them too).

Every `OpExample` of an op is a one-op spec (`one_op_spec`); `check_op_example` builds it in
every installed backend that has a rule for the op and checks what a new op most often gets
wrong: the weights survive canonical -> backend -> canonical, each backend's parameter counts
equal the analysis's, the output has the analysed shape, and every pair of backends computes
the same numbers from the same weights. A plugin's test file is then two lines of pytest:

    @pytest.mark.parametrize(("op", "example"), op_examples("my_plugin_dist"))
    def test_op(op: str, example: str) -> None:
        check_op_example(op, example)

Framework-free until a check runs: the backends are imported by `check_op_example`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import yaml

from xgraph.ops import REGISTRY, OpExample


def op_examples(origin: str | None = None) -> list[tuple[str, str]]:
    """(op, example id) for every example of every registered op, or of the ops one
    distribution provides (`origin`: "xgraph" for the built-in ops, a plugin's name)."""
    ops = sorted(name for name, op in REGISTRY.items() if origin in (None, op.origin))
    return [(op, example.id) for op in ops for example in REGISTRY[op].examples]


def op_example(op: str, example: str) -> OpExample:
    found = [case for case in REGISTRY[op].examples if case.id == example]
    if not found:
        known = ", ".join(case.id for case in REGISTRY[op].examples) or "none"
        raise KeyError(f"op '{op}' has no example '{example}' (its examples: {known})")
    return found[0]


def one_op_spec(op: str, example: str) -> str:
    """A spec whose only computing node is one `op` node named `out`, fed by one input per
    input shape of the example (the `input` op: an input and a linear activation)."""
    case = op_example(op, example)
    shapes = [list(shape) for shape in case.inputs]
    inputs = [{"name": f"x{i}", "shape": shape} for i, shape in enumerate(shapes)]
    spec: dict[str, Any] = {"xgraph": 1, "name": f"{op}_{example}", "inputs": inputs}
    if op == "input":
        spec["nodes"] = [{"name": "out", "op": "activation", "activation": "linear"}]
    else:
        node = {"name": "out", "op": op, **case.attrs}
        if len(shapes) > 1:
            node["inputs"] = [entry["name"] for entry in inputs]
        spec["nodes"] = [node]
    return yaml.safe_dump(spec, sort_keys=False)


def check_op_example(
    op: str, example: str, backends: Sequence[str] | None = None, tol: float = 1e-5
) -> None:
    """Raise AssertionError, naming the backend and the weight or node, unless every backend
    (default: every installed one) lowers the example as the analysis says and all agree
    within `tol` (relative to the largest output)."""
    import numpy as np

    from xgraph.api import loads
    from xgraph.backend import available_backends, load_backend
    from xgraph.weights.initial import random_weights

    analysed = loads(one_op_spec(op, example))
    weights = random_weights(analysed, seed=7)
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(2, *shape)).astype(np.float32) for shape in analysed.input_shapes()]
    outputs: dict[str, np.ndarray] = {}
    for name in backends or available_backends():
        backend = load_backend(name)
        assert op in backend.rules, f"the {name} backend has no rule for '{op}'"
        model = backend.build(analysed, weights)
        back = backend.get_weights(model, analysed)
        assert back.keys() == weights.keys(), f"{name}: weights {sorted(back)} != {sorted(weights)}"
        for key, value in weights.items():
            np.testing.assert_array_equal(back[key], value, err_msg=f"{name}: weight {key}")
        counts = backend.node_param_counts(model, analysed)
        for node in analysed.graph.nodes:
            expected = analysed.counts[node.name]
            got = counts[node.name]
            assert got == (expected.trainable, expected.non_trainable), (
                f"{name}: node '{node.name}' has (trainable, non-trainable) {got}, "
                f"the analysis says {(expected.trainable, expected.non_trainable)}"
            )
        (output,) = backend.predict(model, inputs)
        assert output.shape == (2, *analysed.shapes["out"]), f"{name}: output {output.shape}"
        outputs[name] = output
    names = sorted(outputs)
    for first, second in itertools.pairwise(names):
        scale = max(float(np.abs(outputs[first]).max()), 1e-6)
        error = float(np.abs(outputs[second] - outputs[first]).max()) / scale
        assert error <= tol, f"{op}/{example}: {second} and {first} differ by {error:.2e}"
