"""One weight slot type for every backend: each backend's rule places each of an op's
canonical parameters in a `WeightSlot`, the core reads them through the `OpRule` protocol,
and a rule table holding something else is refused when it is loaded."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import numpy as np
import pytest
from backend_cases import case_ids, one_op_spec

import xgraph.backend.rules as rules_module
from xgraph.api import loads
from xgraph.backend.rules import OpRule, op_rules, placed_weights, rule_backends
from xgraph.errors import SpecError
from xgraph.weights.slots import (
    PlacedWeight,
    WeightSlot,
    channels_first_kernel,
    grouped_depthwise_kernel,
    transposed_matrix,
)


def test_every_backend_rule_is_an_op_rule_with_weight_slots() -> None:
    for backend in rule_backends():
        for op, rule in op_rules(backend).items():
            assert isinstance(rule, OpRule), (backend, op)
            assert all(isinstance(slot, WeightSlot) for slot in rule.weights.values()), op


@pytest.mark.parametrize(("op", "case"), case_ids())
def test_placed_weights_follow_the_op_and_round_trip(op: str, case: str) -> None:
    analysed = loads(one_op_spec(op, case))
    node = analysed.graph["out"] if "out" in analysed.graph else analysed.graph.nodes[0]
    rng = np.random.default_rng(0)
    for backend in rule_backends():
        placed = placed_weights(analysed, node, backend)
        assert [p.param for p in placed] == list(analysed.counts[node.name].params)
        for weight in placed:
            assert weight.key == f"{node.name}/{weight.param.name}"
            value = rng.random(weight.param.shape)
            back = weight.from_framework(np.ascontiguousarray(weight.to_framework(value)))
            np.testing.assert_array_equal(back, value, err_msg=f"{backend} {weight.key}")


def test_layout_slots_convert_to_channels_first() -> None:
    kernel = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    assert channels_first_kernel().to_framework(kernel).shape == (5, 4, 2, 3)
    assert grouped_depthwise_kernel().to_framework(kernel).shape == (20, 1, 2, 3)
    assert transposed_matrix().to_framework(np.zeros((6, 7))).shape == (7, 6)


def test_a_slot_without_a_key_is_named_as_the_canonical_parameter() -> None:
    analysed = loads(one_op_spec("conv2d", "valid"))
    param = analysed.counts["out"].params[0]
    assert PlacedWeight("out", param, WeightSlot()).framework_key == param.name
    assert PlacedWeight("out", param, WeightSlot("weight")).framework_key == "weight"


def test_a_rule_that_places_too_few_weights_is_a_located_error(monkeypatch) -> None:
    analysed = loads(one_op_spec("conv2d", "valid"))
    table = op_rules("torch")
    rule = table["conv2d"]
    monkeypatch.setitem(table, "conv2d", type(rule)(rule.lower, {}))
    with pytest.raises(SpecError, match="does not place its weights kernel, bias"):
        placed_weights(analysed, analysed.graph["out"], "torch")


def test_a_table_entry_that_is_not_a_rule_is_refused(monkeypatch) -> None:
    entry = EntryPoint("fake", "fake_rules:RULES", "xgraph.op_rules")
    monkeypatch.setattr(rules_module, "loaded", lambda group, name: [(entry, {"twice": 2})])
    uncached = rules_module.op_rules.__wrapped__  # the cache keeps the real tables
    with pytest.raises(SpecError, match=r"rule of op 'twice' .* must have a `lower` .*, got int"):
        uncached("fake")
