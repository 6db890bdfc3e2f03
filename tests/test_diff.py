"""`xgraph diff`: nodes added, removed and changed between two specs, and the totals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xgraph.api import load, loads
from xgraph.cli import main
from xgraph.reports.diff import diff_graphs
from xgraph.reports.diff_views import diff_dict, diff_text
from xgraph.reports.matching import braced

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
    # fed through the added depthwise step, not rewired: its input stands for the same node
    assert "inputs" not in fields
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


def test_a_shorter_middle_flow_compares_exit_flow_with_exit_flow() -> None:
    a = load(XCEPTION)
    b = load(XCEPTION, ["middle_flow_blocks=7", "input_shape=[224,224,3]"])
    result = diff_graphs(a, b)
    # the last middle-flow block is gone; the exit flow, block13 before, is block12 now
    removed = {n.name for n in result.removed}
    assert removed == {n.name for n in a.graph.nodes if n.block == ("block12",)}
    assert result.renamed == [("block13", "block12", "downsampling_block")]
    assert result.renamed_nodes == []  # the instance's rename says why its nodes' names differ
    changed = {c.name: c for c in result.changed}
    exit_conv = {f: (o, n) for f, o, n in changed["block12_sepconv2"].changes}
    assert changed["block12_sepconv2"].before_name == "block13_sepconv2"
    assert "filters" not in exit_conv  # 1024 in both: an exit-flow conv against its like
    assert exit_conv["output_shape"] == ((19, 19, 1024), (14, 14, 1024))
    # fed by the block before the removed one, as before: not rewired
    assert "inputs" not in {f for f, _, _ in changed["block12_residual"].changes}
    assert {f: (o, n) for f, o, n in changed["block1_conv1"].changes}["output_shape"] == (
        (149, 149, 32),
        (111, 111, 32),
    )
    assert result.params == [
        ("input_shape", [299, 299, 3], [224, 224, 3]),
        ("middle_flow_blocks", 8, 7),
    ]


def test_whole_instances_show_as_one_row_and_alike_changes_as_one_line() -> None:
    text = diff_text(diff_graphs(load(XCEPTION), load(XCEPTION, ["middle_flow_blocks=4"])))
    assert "renamed: block13 -> block9 (downsampling_block)" in text
    assert "  block{9..12} (4 x middle_block: 40 nodes)" in text
    text = diff_text(diff_graphs(load(XCEPTION), load(INTERMEDIATE)))
    assert "  block{5..12}_sepconv{1..3}:" in text.splitlines()


def test_braced_names() -> None:
    assert braced(["block5", "block6", "block7"]) == "block{5..7}"
    assert braced(["b1", "b3"]) == "b{1,3}"
    assert braced(["_residual", "_sepconv1"]) == "_{residual,sepconv1}"
    assert braced(["a", "ab"]) == "{a,ab}"
    assert braced(["only"]) == "only"


def test_cli_diff_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["diff", str(SPECS / "xception41.yaml"), str(SPECS / "xception65.yaml"), "--json"])
        == 1
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
    # exit1 now follows middle16, fed around the added modules: nothing else changes
    assert document["changed"] == []
    assert document["params"] == [{"name": "middle_flow_blocks", "before": 8, "after": 16}]
    assert document["renamed"] == []
    assert document["renamed_nodes"] == []


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


def test_exit_status_is_0_when_the_same_1_when_different_as_diff_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["diff", XCEPTION, XCEPTION]) == 0
    assert main(["diff", XCEPTION, XCEPTION, "--set", "classes=10"]) == 0
    assert main(["diff", XCEPTION, INTERMEDIATE]) == 1
    assert main(["diff", XCEPTION, XCEPTION, "--json"]) == 0
    assert main(["diff", XCEPTION, str(SPECS / "nothere.yaml")]) == 2


def _variant(tmp_path: Path) -> str:
    """The issue's variant: 10 classes at 128x128, half the width, 4 middle blocks."""
    width = "  width: {default: 0.5}\n" if "width" in load(XCEPTION).params else ""
    halved = (
        ""
        if width
        else """override:
  block1_conv1: {filters: 16}
  block1_conv2: {filters: 32}
  block2: {args: {filters: 64}}
  block3: {args: {filters: 128}}
  block4: {args: {filters: 368}}
  "block${i + 5}": {args: {filters: 368}}
  "block${middle_flow_blocks + 5}": {args: {filters: 368, exit_filters: 512}}
  block14_sepconv1: {filters: 768}
  block14_sepconv2: {filters: 1024}
"""
    )
    path = tmp_path / "variant.yaml"
    path.write_text(
        f"""xgraph: 1
extends: {XCEPTION}
name: xception_half
params:
  classes: {{default: 10}}
  input_shape: {{default: [128, 128, 3]}}
  middle_flow_blocks: {{default: 4}}
{width}{halved}"""
    )
    return str(path)


def test_the_variant_of_the_issue_reads_in_under_40_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diff", XCEPTION, _variant(tmp_path), "--ignore-shapes"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) < 40, "\n".join(lines)
    assert "  block{9..12} (4 x middle_block: 40 nodes)" in "\n".join(lines)
    assert "  block{5..8}_sepconv{1..3}: filters: 728 -> 368" in lines
    assert "  block9_sepconv1 (was block13_sepconv1): filters: 728 -> 368" in lines
    assert not any("output_shape" in line or "macs" in line for line in lines)


def test_same_params_shows_only_the_edits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    variant = tmp_path / "variant.yaml"
    variant.write_text(
        f"""xgraph: 1
extends: {XCEPTION}
name: v
params:
  classes: {{default: 10}}
  middle_flow_blocks: {{default: 4}}
override:
  block14_sepconv2: {{filters: 1024}}
"""
    )
    assert main(["diff", XCEPTION, str(variant), "--same-params"]) == 1
    out = capsys.readouterr().out
    assert "  classes: 1,000 -> 10" in out  # the parameters still say how the specs differ
    assert "removed: 0 nodes" in out  # but the graph is compared at 8 middle blocks
    changed = out[out.index("changed:") :].splitlines()
    assert changed[:2] == ["changed: 5 nodes", "  block14_sepconv2:"]  # and what follows it
    assert "  predictions:" in changed  # 1000 classes and 2048 filters before, 1024 after
    assert main(["diff", XCEPTION, str(variant), "--same-params", "--ignore-shapes"]) == 1
    out = capsys.readouterr().out
    assert out.endswith("changed: 1 node\n  block14_sepconv2: filters: 2,048 -> 1,024\n")


def test_a_changed_default_shows_once_not_per_node(tmp_path: Path) -> None:
    variant = tmp_path / "momentum.yaml"
    variant.write_text(
        f"""xgraph: 1
extends: {XCEPTION}
name: v
defaults:
  batch_norm: {{momentum: 0.9, epsilon: 0.001}}
override:
  block1_conv1_bn: {{momentum: 0.5}}
"""
    )
    result = diff_graphs(load(XCEPTION), load(str(variant)))
    assert not result.same
    # epsilon 0.001 is the op's own default: nothing changes, and nothing is listed for it
    assert result.defaults == [
        ("batch_norm.momentum", None, 0.9),
        ("batch_norm.epsilon", None, 0.001),
    ]
    assert result.by_defaults == {"batch_norm.momentum": 39}
    # the node whose own value differs from the new default is still listed
    assert [(c.name, c.changes) for c in result.changed] == [
        ("block1_conv1_bn", (("momentum", 0.99, 0.5),))
    ]
    lines = diff_text(result).splitlines()
    assert "  batch_norm.momentum: (none) -> 0.9 (39 nodes)" in lines
    assert "  batch_norm.epsilon: (none) -> 0.001" in lines
    assert diff_dict(result)["defaults"][0] == {
        "name": "batch_norm.momentum",
        "before": None,
        "after": 0.9,
        "nodes": 39,
    }


def test_set_of_a_default_applies_to_both_specs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", XCEPTION, XCEPTION, "--set", "defaults.batch_norm.momentum=0.9"]) == 0


CHAIN = """
xgraph: 1
name: chain
inputs: [{name: x, shape: [8, 8, 3]}]
nodes:
  - {name: conv, op: conv2d, filters: 4, kernel_size: 1}
  - {name: relu, op: activation, activation: relu}
  - {name: pool, op: max_pool2d, inputs: relu}
  - {name: head, op: conv2d, filters: 2, kernel_size: 1, inputs: pool}
outputs: [head]
"""


def _renamed(spec: str, old: str, new: str) -> str:
    """`spec` with node `old` named `new`, and read by that name."""
    return spec.replace(f"name: {old},", f"name: {new},").replace(
        f"inputs: {old}}}", f"inputs: {new}}}"
    )


def test_a_node_only_renamed_reads_as_renamed_not_as_removed_and_added() -> None:
    result = diff_graphs(loads(CHAIN), loads(_renamed(CHAIN, "relu", "act")))
    assert (result.added, result.removed, result.changed) == ([], [], [])
    assert result.renamed_nodes == [("relu", "act")]
    assert not result.same
    lines = diff_text(result).splitlines()
    assert lines[lines.index("renamed: 1 node") + 1] == "  relu -> act"
    assert diff_dict(result)["renamed_nodes"] == [{"before": "relu", "after": "act"}]


def test_renames_in_a_chain_pair_by_the_pairs_before_them() -> None:
    # as Keras names layers: each node's input is itself only renamed
    automatic = _renamed(_renamed(CHAIN, "conv", "conv2d"), "relu", "activation")
    result = diff_graphs(loads(automatic), loads(CHAIN))
    assert (result.added, result.removed, result.changed) == ([], [], [])
    assert result.renamed_nodes == [("conv2d", "conv"), ("activation", "relu")]
    lines = diff_text(result).splitlines()
    start = lines.index("renamed: 2 nodes")
    assert lines[start + 1 : start + 3] == ["  conv2d     -> conv", "  activation -> relu"]


def test_a_renamed_node_that_changed_reads_as_changed_under_its_old_name() -> None:
    # matched by structure, its output shape changed with the input's
    smaller = _renamed(CHAIN, "relu", "act").replace("[8, 8, 3]", "[4, 4, 3]")
    result = diff_graphs(loads(CHAIN), loads(smaller))
    assert result.renamed_nodes == []
    changed = {change.name: change for change in result.changed}
    assert changed["act"].before_name == "relu"
    assert "  act (was relu): output_shape: (8, 8, 4) -> (4, 4, 4)" in diff_text(result)


def test_a_renamed_instance_node_whose_attribute_changed_reads_as_changed() -> None:
    spec = """
xgraph: 1
name: units
inputs: [{name: x, shape: [8, 8, 3]}]
blocks:
  unit:
    params: {filters: {type: int}}
    nodes:
      - {name: "${name}_conv", op: conv2d, filters: "${filters}", kernel_size: 1}
      - {name: "${name}_relu", op: activation, activation: relu}
nodes:
  - {use: unit, name: u1, args: {filters: 4}}
  - {name: head, op: conv2d, filters: 2, kernel_size: 1, inputs: u1_relu}
outputs: [head]
"""
    other = spec.replace("name: u1, args: {filters: 4}", "name: u2, args: {filters: 8}")
    result = diff_graphs(loads(spec), loads(other.replace("u1_relu", "u2_relu")), True)
    assert result.renamed == [("u1", "u2", "unit")]
    assert result.renamed_nodes == []  # u1_relu -> u2_relu: the instance's rename says why
    assert [(c.name, c.before_name, c.changes) for c in result.changed] == [
        ("u2_conv", "u1_conv", (("filters", 4, 8),))
    ]
    assert "  u2_conv (was u1_conv): filters: 4 -> 8" in diff_text(result).splitlines()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("relu", "{name: act, op: activation, activation: sigmoid}"),  # another attribute
        ("pool", "{name: act, op: avg_pool2d, inputs: relu}"),  # another op, alike attributes
        ("relu", "{name: act, op: activation, activation: relu, inputs: x}"),  # another input
    ],
)
def test_a_renamed_node_that_computes_something_else_is_removed_and_added(
    old: str, new: str
) -> None:
    lines = [f"  - {new}" if f"{{name: {old}," in line else line for line in CHAIN.split("\n")]
    other = "\n".join(lines).replace(f"inputs: {old}}}", "inputs: act}")
    # (conv an output too, where act no longer reads it)
    result = diff_graphs(loads(CHAIN), loads(other.replace("[head]", "[head, conv]")))
    assert [n.name for n in result.added] == ["act"]
    assert [n.name for n in result.removed] == [old]
    assert result.renamed_nodes == []
    assert "renamed:" not in diff_text(result)
