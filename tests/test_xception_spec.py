"""specs/xception.yaml reproduces keras.applications.Xception: counts, shapes, MACs, variants.

The numbers are those of ../shared/REFERENCE.md, read off Keras and timm.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from xgraph.ir.analysis import AnalysedGraph

if TYPE_CHECKING:
    from conftest import CliRunner

NODE_KEYS = {
    "name",
    "op",
    "inputs",
    "output_shape",
    "trainable_params",
    "non_trainable_params",
    "macs",
}
TOTAL = 22_910_480
WITHOUT_TOP = 20_861_480
# One middle-flow block: three separable convs of 728 filters without bias, three BatchNorms.
MIDDLE_BLOCK_PARAMS = 3 * (3 * 3 * 728 + 728 * 728 + 4 * 728)


@pytest.fixture
def summarise(run_cli: CliRunner, xception_path: Path) -> Any:
    """`xgraph summary specs/xception.yaml --json [--set OVERRIDE ...]`, parsed."""

    def summarise(*overrides: str) -> dict[str, Any]:
        sets = [arg for override in overrides for arg in ("--set", override)]
        result = run_cli("summary", xception_path, "--json", *sets)
        assert result.code == 0, result.err
        return result.json()

    return summarise


@pytest.fixture
def summary(summarise: Any) -> dict[str, Any]:
    return summarise()


def shapes_of(summary: dict[str, Any]) -> dict[str, list[int]]:
    return {node["name"]: node["output_shape"] for node in summary["nodes"]}


def test_parameter_totals_match_keras(summary: dict[str, Any]) -> None:
    assert summary["total_params"] == TOTAL
    assert summary["trainable_params"] == 22_855_952
    assert summary["non_trainable_params"] == 54_528


def test_totals_are_the_sums_over_nodes(summary: dict[str, Any]) -> None:
    nodes = summary["nodes"]
    assert sum(n["trainable_params"] for n in nodes) == summary["trainable_params"]
    assert sum(n["non_trainable_params"] for n in nodes) == summary["non_trainable_params"]
    assert sum(n["macs"] for n in nodes) == summary["macs"]


def test_without_top_has_the_keras_parameter_count(summarise: Any) -> None:
    assert summarise("include_top=false")["total_params"] == WITHOUT_TOP


def test_has_34_separable_and_6_regular_convolutions(summary: dict[str, Any]) -> None:
    ops = Counter(node["op"] for node in summary["nodes"])
    assert ops["separable_conv2d"] == 34
    assert ops["conv2d"] == 6  # block1's two, and the four 1x1 residual convolutions


def test_macs_are_the_papers_8_4_billion(summary: dict[str, Any]) -> None:
    assert summary["macs"] == pytest.approx(8.357e9, rel=0.01)


def test_output_is_the_1000_class_prediction(summary: dict[str, Any]) -> None:
    assert summary["outputs"] == ["predictions"]
    assert summary["nodes"][-1]["name"] == "predictions"
    assert summary["nodes"][-1]["output_shape"] == [1000]


def test_summary_json_has_the_documented_keys(summary: dict[str, Any]) -> None:
    documented = {"name", "total_params", "trainable_params", "non_trainable_params", "macs"}
    assert {*documented, "nodes"} <= set(summary)
    assert summary["name"] == "xception"
    for node in summary["nodes"]:
        assert set(node) >= NODE_KEYS, node["name"]


def test_summary_nodes_are_in_topological_order(summary: dict[str, Any]) -> None:
    seen: set[str] = set()
    for node in summary["nodes"]:
        assert set(node["inputs"]) <= seen, f"{node['name']} comes before one of its inputs"
        assert node["name"] not in seen
        seen.add(node["name"])


def test_spatial_sizes_follow_the_paper(summary: dict[str, Any]) -> None:
    """299 -> 149 -> 147 -> 74 -> 37 -> 19 -> 19 -> 10, as REFERENCE.md traces it."""
    shapes = shapes_of(summary)
    assert shapes["block1_conv1"] == [149, 149, 32]
    assert shapes["block1_conv2"] == [147, 147, 64]
    assert shapes["block2_add"] == [74, 74, 128]
    assert shapes["block3_add"] == [37, 37, 256]
    assert shapes["block4_add"] == [19, 19, 728]
    assert shapes["block12_add"] == [19, 19, 728]
    assert shapes["block13_add"] == [10, 10, 1024]
    assert shapes["block14_sepconv2_act"] == [10, 10, 2048]
    assert shapes["avg_pool"] == [2048]


@pytest.mark.parametrize(
    ("pooling", "node", "op"),
    [("avg", "avg_pool", "global_avg_pool"), ("max", "max_pool", "global_max_pool")],
)
def test_pooling_without_top_gives_a_feature_vector(
    summarise: Any, pooling: str, node: str, op: str
) -> None:
    summary = summarise("include_top=false", f"pooling={pooling}")
    last = summary["nodes"][-1]
    assert (last["name"], last["op"], last["output_shape"]) == (node, op, [2048])
    assert summary["outputs"] == [node]
    assert summary["total_params"] == WITHOUT_TOP


def test_without_top_or_pooling_ends_with_the_feature_map(summarise: Any) -> None:
    summary = summarise("include_top=false")
    assert summary["outputs"] == ["block14_sepconv2_act"]
    assert summary["nodes"][-1]["output_shape"] == [10, 10, 2048]


def test_classes_sets_the_size_of_the_predictions(summarise: Any) -> None:
    summary = summarise("classes=10")
    predictions = summary["nodes"][-1]
    assert predictions["output_shape"] == [10]
    assert predictions["trainable_params"] == 2048 * 10 + 10
    assert summary["total_params"] == WITHOUT_TOP + 2048 * 10 + 10


@pytest.mark.parametrize("blocks", [0, 2])
def test_middle_flow_length_is_a_parameter(summarise: Any, blocks: int) -> None:
    summary = summarise(f"middle_flow_blocks={blocks}")
    shapes = shapes_of(summary)
    ops = Counter(node["op"] for node in summary["nodes"])
    assert ops["separable_conv2d"] == 6 + 3 * blocks + 4  # entry, middle, exit
    for index in range(5, 5 + blocks):
        assert shapes[f"block{index}_add"] == [19, 19, 728]
    # The exit block is numbered after the middle flow.
    assert shapes[f"block{5 + blocks}_add"] == [10, 10, 1024]
    assert f"block{6 + blocks}_add" not in shapes
    assert summary["nodes"][-1]["output_shape"] == [1000]
    assert summary["total_params"] == TOTAL - (8 - blocks) * MIDDLE_BLOCK_PARAMS


def test_input_shape_is_a_parameter(summarise: Any) -> None:
    shapes = shapes_of(summarise("input_shape=[224, 224, 3]"))
    assert shapes["input_layer"] == [224, 224, 3]
    assert shapes["block14_sepconv2_act"] == [7, 7, 2048]
    assert shapes["predictions"] == [1000]


def test_every_node_is_located_at_its_spec_text(
    xception: AnalysedGraph, xception_path: Path
) -> None:
    """Each node's location is the start of the mapping that declares it, in xception.yaml."""
    lines = xception_path.read_text().splitlines()
    for node in xception.graph.nodes:
        assert node.location.file == str(xception_path)
        line = lines[node.location.line - 1]
        text = line[node.location.column - 1 :]
        assert text.startswith("{"), node.name
        assert f"op: {node.op}" in text or node.op == "input", node.name
    assert xception.graph["block5_sepconv1"].block == ("block5",)
    assert xception.graph["block12_add"].location == xception.graph["block5_add"].location
