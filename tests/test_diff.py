"""`xgraph diff`: nodes added, removed and changed between two specs, and the totals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xgraph.api import load
from xgraph.cli import main
from xgraph.reports.diff import diff_dict, diff_graphs, diff_text

SPECS = Path(__file__).resolve().parent.parent / "specs"
XCEPTION = str(SPECS / "xception.yaml")
INTERMEDIATE = str(SPECS / "xception_intermediate_relu.yaml")


@pytest.fixture(scope="module")
def intermediate_relu():
    return diff_graphs(load(XCEPTION), load(INTERMEDIATE))


def test_intermediate_relu_reads_as_bn_and_relu_between_the_steps(intermediate_relu) -> None:
    result = intermediate_relu
    assert result.removed == []
    assert len(result.added) == 3 * 34
    assert {n.op for n in result.added} == {"depthwise_conv2d", "batch_norm", "activation"}
    assert [n.name for n in result.added[:3]] == [
        "block2_sepconv1_depthwise",
        "block2_sepconv1_depthwise_bn",
        "block2_sepconv1_depthwise_act",
    ]
    assert len(result.changed) == 34
    first = result.changed[0]
    assert first.name == "block2_sepconv1"
    fields = {name: (old, new) for name, old, new in first.changes}
    assert fields["op"] == ("separable_conv2d", "conv2d")
    assert fields["kernel_size"] == ((3, 3), (1, 1))
    assert fields["inputs"] == (["block1_conv2_act"], ["block2_sepconv1_depthwise_act"])
    assert "output_shape" not in fields  # the same shape, as the seed's reading keeps it
    before, after = result.totals["non_trainable_params"]
    assert (
        after - before
        == result.totals["trainable_params"][1] - (result.totals["trainable_params"][0])
    )
    assert result.totals["macs"][0] == result.totals["macs"][1]
    assert result.totals["nodes"] == (134, 236)


def test_the_text_lists_totals_then_nodes(intermediate_relu) -> None:
    text = diff_text(intermediate_relu)
    lines = text.splitlines()
    assert lines[:4] == [
        "--- xception",
        "+++ xception_intermediate_relu",
        "totals:",
        "  nodes:           134 -> 236 (+102)",
    ]
    assert "  parameters:      22,910,480 -> 23,002,672 (+92,192)" in lines
    assert "added: 102 nodes" in lines
    assert "removed: 0 nodes" in lines
    assert "changed: 34 nodes" in lines
    assert "    op: separable_conv2d -> conv2d" in lines


def test_a_spec_against_itself_is_the_same() -> None:
    analysed = load(XCEPTION)
    result = diff_graphs(analysed, analysed)
    assert result.same
    assert (result.added, result.removed, result.changed) == ([], [], [])
    assert "(0)" in diff_text(result)


def test_a_parameter_change_shows_the_removed_nodes_and_changed_shapes() -> None:
    a = load(XCEPTION)
    b = load(XCEPTION, ["middle_flow_blocks=7", "input_shape=[224,224,3]"])
    result = diff_graphs(a, b)
    # the exit flow is block12 now: block12's middle-flow nodes and block13 are gone
    assert {n.name for n in result.removed} >= {"block12_sepconv3", "block13_add"}
    changed = {c.name: {f: (o, n) for f, o, n in c.changes} for c in result.changed}
    assert changed["block12_add"]["inputs"] == (
        ["block12_sepconv3_bn", "block11_add"],
        ["block12_pool", "block12_residual_bn"],
    )
    assert changed["block1_conv1"]["output_shape"] == ((149, 149, 32), (111, 111, 32))


def test_cli_diff_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["diff", str(SPECS / "xception41.yaml"), str(SPECS / "xception65.yaml"), "--json"])
        == 0
    )
    document = json.loads(capsys.readouterr().out)
    assert (document["before"], document["after"], document["same"]) == (
        "xception41",
        "xception65",
        False,
    )
    assert document["totals"]["trainable_params"] == {
        "before": 26_969_560,
        "after": 39_916_312,
        "delta": 39_916_312 - 26_969_560,
    }
    added = {node["name"] for node in document["added"]}
    assert {"middle9_add", "middle16_add"} <= added
    assert document["removed"] == []
    # exit1 now follows middle16: its two first nodes are rewired, nothing else changes
    assert [change["name"] for change in document["changed"]] == [
        "exit1_act1",
        "exit1_shortcut_conv",
    ]
    assert document["changed"][0]["changes"] == [
        {"field": "inputs", "before": ["middle8_add"], "after": ["middle16_add"]}
    ]


def test_cli_diff_applies_set_to_both(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", XCEPTION, XCEPTION, "--set", "classes=10"]) == 0
    assert "changed: 0 nodes" in capsys.readouterr().out


def test_cli_diff_reports_a_spec_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", XCEPTION, INTERMEDIATE, "--set", "clases=10"]) == 2
    assert "unknown parameter 'clases'" in capsys.readouterr().err


def test_json_document_is_plain_json(intermediate_relu) -> None:
    document = diff_dict(intermediate_relu)
    assert json.loads(json.dumps(document)) == document


def test_other_outputs_or_their_order_are_a_difference() -> None:
    from xgraph.api import loads

    spec = """
xgraph: 1
name: two
inputs: [{name: x, shape: [4, 4, 3]}]
nodes:
  - {name: a, op: conv2d, filters: 2, kernel_size: 1}
  - {name: b, op: activation, activation: relu}
outputs: [a, b]
"""
    result = diff_graphs(loads(spec), loads(spec.replace("[a, b]", "[b, a]")))
    assert not result.same
    assert result.interface == [("outputs", ["a", "b"], ["b", "a"])]
    assert "outputs: a, b -> b, a" in diff_text(result)
    assert diff_dict(result)["interface"] == [
        {"field": "outputs", "before": ["a", "b"], "after": ["b", "a"]}
    ]
