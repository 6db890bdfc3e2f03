"""The spec language, one feature per test, on small specs written inline.

Each spec starts at line 1 of its text, so the line numbers asserted in the location tests can
be read off the test itself.
"""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from xgraph.api import load, loads
from xgraph.errors import Location, SpecError
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node


def compile_text(text: str, *overrides: str) -> AnalysedGraph:
    return loads(dedent(text), overrides, file="net.yaml")


def names(analysed: AnalysedGraph) -> list[str]:
    return [node.name for node in analysed.graph.nodes]


def node(analysed: AnalysedGraph, name: str) -> Node:
    return analysed.graph[name]


PARAMS = """\
    xgraph: 1
    name: params
    params:
      width: {type: int, default: 8}
      rate: {type: float, default: 0.5}
      bias: {type: bool, default: true}
      act: {type: str, default: relu, choices: [relu, tanh, none]}
      size: {type: shape, default: [16, 16, 3]}
    inputs:
      - {name: x, shape: "${size}"}
    nodes:
      - {name: conv, op: conv2d, filters: "${width}", kernel_size: 3, use_bias: "${bias}"}
      - {name: act, op: activation, activation: "${act}"}
      - {name: drop, op: dropout, rate: "${rate}"}
"""


# Parameters


def test_params_take_their_defaults() -> None:
    analysed = compile_text(PARAMS)
    assert analysed.params == {
        "width": 8,
        "rate": 0.5,
        "bias": True,
        "act": "relu",
        "size": [16, 16, 3],
    }
    assert node(analysed, "conv").attrs.filters == 8
    assert analysed.shapes["x"] == (16, 16, 3)


def test_set_overrides_a_default() -> None:
    analysed = compile_text(PARAMS, "width=32")
    assert analysed.params["width"] == 32
    assert node(analysed, "conv").attrs.filters == 32
    assert analysed.shapes["conv"] == (14, 14, 32)


def test_set_values_are_read_as_yaml() -> None:
    analysed = compile_text(
        PARAMS, "bias=false", "size=[9, 9, 1]", "rate=0.25", "act=tanh", "width= 4"
    )
    assert analysed.params == {
        "width": 4,
        "rate": 0.25,
        "bias": False,
        "act": "tanh",
        "size": [9, 9, 1],
    }
    conv = node(analysed, "conv")
    assert conv.attrs.use_bias is False
    assert analysed.counts["conv"].trainable == 3 * 3 * 1 * 4
    assert analysed.shapes["drop"] == (7, 7, 4)


def test_set_integer_for_a_float_parameter_is_a_float() -> None:
    analysed = compile_text(PARAMS, "rate=0")
    assert analysed.params["rate"] == 0.0
    assert isinstance(analysed.params["rate"], float)


def test_none_activation_means_linear() -> None:
    assert node(compile_text(PARAMS, "act=none"), "act").attrs.activation == "linear"


def test_a_parameter_set_twice_is_an_error() -> None:
    """Which of two `--set` of one name is meant is unclear: neither is silently dropped."""
    with pytest.raises(SpecError) as caught:
        compile_text(PARAMS, "width=2", "rate=0.1", "width=6")
    assert caught.value.format().splitlines() == [
        "--set:3:1: error: --set sets 'width' twice",
        "  hint: keep one of them",
        "  note: first set at --set:1:1",
    ]


# Default wiring, branches, merges and outputs


def test_default_input_is_the_previous_node() -> None:
    analysed = compile_text(PARAMS)
    assert node(analysed, "conv").inputs == ("x",)
    assert node(analysed, "act").inputs == ("conv",)
    assert node(analysed, "drop").inputs == ("act",)


def test_default_output_is_the_last_node() -> None:
    assert compile_text(PARAMS).graph.outputs == ("drop",)


BRANCHES = """\
    xgraph: 1
    name: branches
    inputs:
      - {name: x, shape: [8, 8, 4]}
    nodes:
      - {name: stem, op: conv2d, filters: 4, kernel_size: 1}
      - {name: wide, op: conv2d, filters: 6, kernel_size: 3, padding: same}
      - {name: narrow, op: conv2d, filters: 2, kernel_size: 1, inputs: stem}
      - {name: joined, op: concat, inputs: [narrow, wide, x]}
      - {name: summed, op: add, inputs: [x, stem]}
    outputs: [joined, summed]
"""


def test_named_references_make_branches() -> None:
    analysed = compile_text(BRANCHES)
    assert node(analysed, "wide").inputs == ("stem",)
    assert node(analysed, "narrow").inputs == ("stem",)
    assert sorted(analysed.graph.consumers("stem")) == ["narrow", "summed", "wide"]


def test_merge_inputs_keep_their_written_order() -> None:
    analysed = compile_text(BRANCHES)
    assert node(analysed, "joined").inputs == ("narrow", "wide", "x")
    assert analysed.shapes["joined"] == (8, 8, 2 + 6 + 4)
    assert node(analysed, "summed").inputs == ("x", "stem")
    assert analysed.shapes["summed"] == (8, 8, 4)


def test_explicit_outputs_may_be_several() -> None:
    analysed = compile_text(BRANCHES)
    assert analysed.graph.outputs == ("joined", "summed")
    assert analysed.graph.inputs == ("x",)


def test_outputs_need_not_be_the_last_node() -> None:
    text = BRANCHES.replace("outputs: [joined, summed]", "outputs: [summed, joined]")
    assert compile_text(text).graph.outputs == ("summed", "joined")


def test_a_node_may_refer_to_one_written_later() -> None:
    analysed = compile_text(
        """\
        xgraph: 1
        name: forward
        inputs:
          - {name: x, shape: [8, 8, 4]}
        nodes:
          - {name: head, op: global_avg_pool, inputs: body}
          - {name: body, op: conv2d, filters: 2, kernel_size: 1, inputs: x}
        outputs: [head]
        """
    )
    assert names(analysed) == ["x", "body", "head"]
    assert analysed.shapes["head"] == (2,)


def test_unnamed_nodes_are_named_after_their_op() -> None:
    analysed = compile_text(
        """\
        xgraph: 1
        name: auto
        inputs:
          - {name: x, shape: [8, 8, 3]}
        nodes:
          - {op: conv2d, filters: 4, kernel_size: 3}
          - {op: batch_norm}
          - {op: conv2d, filters: 4, kernel_size: 3}
          - {op: batch_norm}
          - {op: conv2d, filters: 4, kernel_size: 1}
        """
    )
    assert names(analysed) == ["x", "conv2d", "batch_norm", "conv2d_1", "batch_norm_1", "conv2d_2"]
    assert node(analysed, "conv2d_1").inputs == ("batch_norm",)


# Blocks

BLOCKS = """\
    xgraph: 1
    name: blocks
    params:
      width: {type: int, default: 4}
    inputs:
      - {name: x, shape: [8, 8, 4]}
    blocks:
      residual:
        params:
          kernel: {type: int, default: 3}
          scale: {type: int, default: 1}
        nodes:
          - name: ${name}_conv
            op: conv2d
            filters: ${width * scale}
            kernel_size: ${kernel}
            padding: same
          - {name: "${name}_add", op: add, inputs: ["${name}_conv", "${input}"]}
    nodes:
      - {name: stem, op: conv2d, filters: "${width}", kernel_size: 1}
      - {use: residual, name: first}
      - {use: residual, name: second, args: {kernel: 5}}
      - {name: head, op: global_avg_pool}
"""


def test_block_binds_name_and_input() -> None:
    analysed = compile_text(BLOCKS)
    assert names(analysed) == [
        "x",
        "stem",
        "first_conv",
        "first_add",
        "second_conv",
        "second_add",
        "head",
    ]
    assert node(analysed, "first_conv").inputs == ("stem",)
    assert node(analysed, "first_add").inputs == ("first_conv", "stem")


def test_block_output_is_its_last_node() -> None:
    analysed = compile_text(BLOCKS)
    assert node(analysed, "second_conv").inputs == ("first_add",)
    assert node(analysed, "second_add").inputs == ("second_conv", "first_add")
    assert node(analysed, "head").inputs == ("second_add",)


def test_block_params_take_defaults_and_args() -> None:
    analysed = compile_text(BLOCKS)
    assert node(analysed, "first_conv").attrs.kernel_size == (3, 3)
    assert node(analysed, "second_conv").attrs.kernel_size == (5, 5)


def test_block_sees_the_spec_parameters() -> None:
    analysed = compile_text(BLOCKS, "width=6")
    assert node(analysed, "first_conv").attrs.filters == 6
    assert analysed.shapes["head"] == (6,)


def test_block_args_may_be_expressions() -> None:
    text = BLOCKS.replace("args: {kernel: 5}", 'args: {kernel: "${width - 3}", scale: 1}')
    assert node(compile_text(text), "second_conv").attrs.kernel_size == (1, 1)


def test_block_instance_may_name_its_input() -> None:
    analysed = compile_text(
        """\
        xgraph: 1
        name: block_inputs
        inputs:
          - {name: x, shape: [8, 8, 4]}
        blocks:
          twice:
            nodes:
              - {name: "${name}_relu", op: activation, activation: relu}
              - {name: "${name}_add", op: add, inputs: ["${name}_relu", "${input}"]}
        nodes:
          - {name: stem, op: conv2d, filters: 4, kernel_size: 1}
          - {use: twice, name: side, inputs: x}
          - {name: joined, op: concat, inputs: [stem, side_add]}
        """
    )
    assert node(analysed, "side_relu").inputs == ("x",)
    assert node(analysed, "side_add").inputs == ("side_relu", "x")
    assert node(analysed, "joined").inputs == ("stem", "side_add")


def test_nodes_outside_may_refer_to_nodes_inside_a_block() -> None:
    analysed = compile_text(
        """\
        xgraph: 1
        name: reach_inside
        inputs:
          - {name: x, shape: [8, 8, 4]}
        blocks:
          pair:
            nodes:
              - {name: "${name}_conv", op: conv2d, filters: 4, kernel_size: 1}
              - {name: "${name}_bn", op: batch_norm}
        nodes:
          - {use: pair, name: p}
          - {name: tap, op: global_avg_pool, inputs: p_conv}
        outputs: [p_bn, tap]
        """
    )
    assert node(analysed, "tap").inputs == ("p_conv",)
    assert analysed.graph.outputs == ("p_bn", "tap")


REPEAT = """\
    xgraph: 1
    name: repeat
    params:
      count: {type: int, default: 3, min: 0}
    inputs:
      - {name: x, shape: [8, 8, 2]}
    blocks:
      unit:
        params:
          filters: {type: int}
        nodes:
          - {name: "${name}_conv", op: conv2d, filters: "${filters}", kernel_size: 1}
          - {name: "${name}_act", op: activation, activation: relu}
    nodes:
      - {name: stem, op: conv2d, filters: 2, kernel_size: 1}
      - use: unit
        name: "unit${i + 1}"
        repeat: "${count}"
        args: {filters: "${2 * (i + 1)}"}
      - {name: head, op: global_max_pool}
"""


def test_repeat_chains_instances_bound_to_the_index() -> None:
    analysed = compile_text(REPEAT)
    assert names(analysed)[2:-1] == [
        "unit1_conv",
        "unit1_act",
        "unit2_conv",
        "unit2_act",
        "unit3_conv",
        "unit3_act",
    ]
    assert node(analysed, "unit1_conv").inputs == ("stem",)
    assert node(analysed, "unit2_conv").inputs == ("unit1_act",)
    assert node(analysed, "unit3_conv").inputs == ("unit2_act",)
    assert node(analysed, "head").inputs == ("unit3_act",)
    assert [analysed.shapes[f"unit{k}_conv"][-1] for k in (1, 2, 3)] == [2, 4, 6]


def test_repeat_index_variable_can_be_renamed() -> None:
    analysed = compile_text(
        """\
        xgraph: 1
        name: index
        inputs:
          - {name: x, shape: [8, 8, 2]}
        blocks:
          unit:
            params:
              filters: {type: int}
            nodes:
              - {name: "${name}_conv", op: conv2d, filters: "${filters}", kernel_size: 1}
        nodes:
          - {use: unit, name: "unit${j}", repeat: 3, index: j, args: {filters: "${j + 1}"}}
        """
    )
    assert names(analysed) == ["x", "unit0_conv", "unit1_conv", "unit2_conv"]
    assert [analysed.shapes[f"unit{j}_conv"][-1] for j in range(3)] == [1, 2, 3]


def test_repeat_count_is_a_parameter() -> None:
    analysed = compile_text(REPEAT, "count=5")
    assert sum(node.op == "conv2d" for node in analysed.graph.nodes) == 1 + 5
    assert node(analysed, "head").inputs == ("unit5_act",)


def test_repeat_zero_times_leaves_the_block_out() -> None:
    analysed = compile_text(REPEAT, "count=0")
    assert names(analysed) == ["x", "stem", "head"]
    assert node(analysed, "head").inputs == ("stem",)


def test_repeat_may_be_a_literal_number() -> None:
    text = REPEAT.replace('"${count}"', "2")
    assert node(compile_text(text), "head").inputs == ("unit2_act",)


# Conditions

WHEN = """\
    xgraph: 1
    name: when
    params:
      norm: {type: bool, default: true}
      pooling: {type: str, default: avg, choices: [avg, max]}
    inputs:
      - {name: x, shape: [8, 8, 2]}
    blocks:
      extra:
        nodes:
          - {name: "${name}_conv", op: conv2d, filters: 2, kernel_size: 1}
    nodes:
      - {name: conv, op: conv2d, filters: 2, kernel_size: 3}
      - {name: bn, op: batch_norm, when: "${norm}"}
      - {use: extra, name: more, when: "${not norm}"}
      - {name: never, op: dropout, rate: 0.5, when: false}
      - {name: avg, op: global_avg_pool, when: "${pooling == 'avg'}"}
      - {name: max, op: global_max_pool, when: "${pooling == 'max'}"}
"""


def test_when_true_keeps_a_node() -> None:
    assert names(compile_text(WHEN)) == ["x", "conv", "bn", "avg"]


def test_when_false_drops_a_node_and_the_chain_closes_over_it() -> None:
    analysed = compile_text(WHEN, "norm=false", "pooling=max")
    assert names(analysed) == ["x", "conv", "more_conv", "max"]
    assert node(analysed, "more_conv").inputs == ("conv",)
    assert node(analysed, "max").inputs == ("more_conv",)


def test_when_literal_false_drops_a_node() -> None:
    assert "never" not in compile_text(WHEN).graph


# Expressions


def test_expressions_interpolate_into_names() -> None:
    analysed = compile_text(
        """\
        xgraph: 1
        name: names
        params:
          stage: {type: int, default: 3}
          wide: {type: bool, default: false}
        inputs:
          - {name: "input_${stage}", shape: [4, 4, 1]}
        nodes:
          - {name: "stage${stage + 1}_conv${stage * 2}", op: conv2d, filters: 1, kernel_size: 1}
          - {name: "wide_${wide}", op: activation, activation: relu}
          - {name: "${'tail' if wide else 'head'}_${stage}", op: flatten}
        """
    )
    assert names(analysed) == ["input_3", "stage4_conv6", "wide_false", "head_3"]


def test_whole_value_expressions_keep_their_type() -> None:
    analysed = compile_text(
        """\
        xgraph: 1
        name: types
        params:
          width: {type: int, default: 3}
          plain: {type: bool, default: true}
        inputs:
          - {name: x, shape: [8, 8, 1]}
        nodes:
          - name: conv
            op: conv2d
            filters: "${width * 2}"
            kernel_size: "${[width, width - 2]}"
            use_bias: "${not plain}"
            padding: " ${'same' if plain else 'valid'} "
          - {name: drop, op: dropout, rate: "${width / 10}"}
        """
    )
    conv = node(analysed, "conv").attrs
    assert (conv.filters, conv.kernel_size, conv.use_bias, conv.padding) == (
        6,
        (3, 1),
        False,
        "same",
    )
    assert node(analysed, "drop").attrs.rate == 0.3
    assert analysed.shapes["conv"] == (8, 8, 6)


# Locations and block paths

LOCATED = """\
xgraph: 1
name: located
inputs:
  - {name: x, shape: [8, 8, 2]}
blocks:
  inner:
    nodes:
      - {name: "${name}_conv", op: conv2d, filters: 2, kernel_size: 1}
  outer:
    nodes:
      - {use: inner, name: "${name}_a"}
      - name: ${name}_bn
        op: batch_norm
nodes:
  - {name: stem, op: conv2d, filters: 2, kernel_size: 3}
  - {use: outer, name: o1}
  - use: outer
    name: o2
  -   op: activation
      activation: relu
"""


def test_nodes_keep_the_location_of_their_spec_text() -> None:
    analysed = loads(LOCATED, file="located.yaml")
    assert node(analysed, "x").location == Location("located.yaml", 4, 5)
    assert node(analysed, "stem").location == Location("located.yaml", 15, 5)
    assert node(analysed, "activation").location == Location("located.yaml", 19, 7)
    assert str(node(analysed, "stem").location) == "located.yaml:15:5"


def test_block_nodes_are_located_in_the_block_definition() -> None:
    analysed = loads(LOCATED, file="located.yaml")
    for instance in ("o1", "o2"):
        assert node(analysed, f"{instance}_a_conv").location.line == 8
        assert node(analysed, f"{instance}_bn").location.line == 12


def test_attributes_keep_their_own_locations() -> None:
    analysed = loads(LOCATED, file="located.yaml")
    stem = node(analysed, "stem")
    assert stem.where("filters") == Location("located.yaml", 15, 39)
    assert stem.where("kernel_size") == Location("located.yaml", 15, 55)
    assert stem.where("no_such_attribute") == stem.location


def test_block_nodes_carry_their_block_instance_path() -> None:
    analysed = loads(LOCATED, file="located.yaml")
    assert node(analysed, "stem").block == ()
    assert node(analysed, "o1_bn").block == ("o1",)
    assert node(analysed, "o1_a_conv").block == ("o1", "o1_a")
    assert node(analysed, "o2_a_conv").block == ("o2", "o2_a")
    assert node(analysed, "activation").block == ()


def test_repeated_block_instances_carry_their_own_names() -> None:
    analysed = compile_text(REPEAT)
    assert [node(analysed, f"unit{k}_act").block for k in (1, 2, 3)] == [
        ("unit1",),
        ("unit2",),
        ("unit3",),
    ]


def test_load_reads_a_file_and_locates_nodes_in_it(tmp_path: Path) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(LOCATED)
    analysed = load(path)
    assert node(analysed, "stem").location == Location(str(path), 15, 5)
    assert analysed.name == "located"


def test_or_gives_the_deciding_value_as_python_does() -> None:
    analysed = compile_text(
        dedent("""\
            xgraph: 1
            name: t
            params: {a: {type: int, default: 0}, b: {type: int, default: 8}}
            inputs: [{name: x, shape: [4]}]
            nodes: [{name: d, op: dense, units: "${a or b}"}]
        """)
    )
    assert analysed.shapes["d"] == (8,)


def test_yaml_true_and_false_are_understood_inside_expressions() -> None:
    text = dedent("""\
        xgraph: 1
        name: t
        params: {p: {type: bool, default: true}}
        inputs: [{name: x, shape: [4]}]
        nodes:
          - {name: d, op: dense, units: 2}
          - {name: e, op: dense, units: 3, when: "${p == false}"}
    """)
    assert names(compile_text(text))[-1] == "d"
    assert names(compile_text(text, "p=false"))[-1] == "e"


def test_a_block_reaches_its_inputs_as_a_list_and_by_index() -> None:
    analysed = compile_text(
        dedent("""\
            xgraph: 1
            name: t
            inputs: [{name: x, shape: [4, 4, 3]}]
            blocks:
              join:
                nodes:
                  - {name: "${name}_cat", op: concat, inputs: "${inputs}"}
                  - {name: "${name}_add", op: add, inputs: ["${inputs[1]}", "${inputs[0]}"]}
                  - {name: "${name}_out", op: concat, inputs: ["${name}_cat", "${name}_add"]}
            nodes:
              - {name: a, op: conv2d, filters: 2, kernel_size: 1}
              - {name: b, op: conv2d, filters: 2, kernel_size: 1, inputs: x}
              - {use: join, name: j, inputs: [a, b]}
        """)
    )
    assert node(analysed, "j_cat").inputs == ("a", "b")
    assert node(analysed, "j_add").inputs == ("b", "a")
    assert analysed.shapes["j_out"] == (4, 4, 6)


def test_input_shapes_take_expressions_per_axis() -> None:
    analysed = compile_text(
        dedent("""\
            xgraph: 1
            name: t
            params: {h: {type: int, default: 6}}
            inputs: [{name: x, shape: ["${h}", "${h * 2}", 3]}]
            nodes: [{name: c, op: conv2d, filters: 2, kernel_size: 3}]
        """)
    )
    assert analysed.shapes["x"] == (6, 12, 3)
