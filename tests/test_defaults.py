"""Spec-wide `defaults:`: per op, attribute values for the nodes that do not set them, in
blocks too, resolved over the params, merged through `extends`, checked where written."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from xgraph.api import load, loads
from xgraph.errors import SpecError
from xgraph.ir.analysis import AnalysedGraph
from xgraph.reports.summary import summary_dict, summary_table

SPEC = """\
xgraph: 1
name: with_defaults
params:
  m: {type: float, default: 0.9}
inputs:
  - {name: image, shape: [8, 8, 3]}
defaults:
  batch_norm: {momentum: "${m}", epsilon: 0.01}
  conv2d: {padding: same}
blocks:
  unit:
    nodes:
      - {name: "${name}_conv", op: conv2d, filters: 4, kernel_size: 3}
      - {name: "${name}_bn", op: batch_norm}
nodes:
  - {use: unit, name: u1}
  - {name: own, op: batch_norm, momentum: 0.5}
  - {name: valid, op: conv2d, filters: 4, kernel_size: 3, padding: valid}
"""


def attrs(analysed: AnalysedGraph, name: str) -> Any:
    return analysed.graph[name].attrs


def test_defaults_apply_to_nodes_that_do_not_set_the_attribute() -> None:
    analysed = loads(SPEC)
    assert attrs(analysed, "u1_bn").momentum == 0.9
    assert attrs(analysed, "u1_bn").epsilon == 0.01
    assert attrs(analysed, "u1_conv").padding == "same"
    assert attrs(analysed, "own").momentum == 0.5  # its own value wins
    assert attrs(analysed, "own").epsilon == 0.01
    assert attrs(analysed, "valid").padding == "valid"
    assert analysed.shapes["u1_conv"] == (8, 8, 4)


def test_defaults_read_params_and_set() -> None:
    assert attrs(loads(SPEC, ["m=0.7"]), "u1_bn").momentum == 0.7


def test_summary_shows_the_defaults() -> None:
    analysed = loads(SPEC)
    assert "Defaults for batch_norm: momentum=0.9, epsilon=0.01" in summary_table(analysed)
    assert summary_dict(analysed)["defaults"]["conv2d"] == {"padding": "same"}
    plain = SPEC.split("defaults:")[0] + "nodes:\n  - {name: bn, op: batch_norm}\n"
    assert "defaults" not in summary_dict(loads(plain))
    assert "Defaults" not in summary_table(loads(plain))


def error(text: str, overrides: tuple[str, ...] = ()) -> SpecError:
    with pytest.raises(SpecError) as caught:
        loads(text, list(overrides), file="d.yaml")
    return caught.value


def test_an_unknown_op_is_located_with_a_hint() -> None:
    exc = error(SPEC.replace("  conv2d: {padding: same}", "  conv2D: {padding: same}"))
    assert exc.message == "unknown op 'conv2D' in 'defaults'"
    assert (exc.location.line, exc.location.column) == (9, 3)  # type: ignore[union-attr]
    assert exc.hint == "did you mean 'conv2d'?"


def test_an_unknown_attribute_is_located_with_a_hint() -> None:
    exc = error(SPEC.replace("{padding: same}", "{paddin: same}"))
    assert "unknown attribute 'paddin' for op 'conv2d'" in exc.message
    assert exc.location.line == 9  # type: ignore[union-attr]
    assert exc.hint == "did you mean 'padding'?"


def test_a_bad_value_is_located_at_the_default() -> None:
    exc = error(SPEC.replace("epsilon: 0.01", "epsilon: -1"))
    assert exc.message.startswith("defaults of 'batch_norm': 'epsilon'")
    assert (exc.location.line, exc.location.column) == (8, 43)  # type: ignore[union-attr]


def test_a_bad_value_from_a_param_is_located_at_the_default() -> None:
    exc = error(SPEC, ("m=1.5",))
    assert "'momentum'" in exc.message
    assert (exc.location.line, exc.location.column) == (8, 26)  # type: ignore[union-attr]


def test_defaults_merge_through_extends_attribute_by_attribute(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(SPEC)
    (tmp_path / "variant.yaml").write_text(
        textwrap.dedent(
            """\
            xgraph: 1
            extends: base.yaml
            name: variant
            defaults:
              batch_norm: {momentum: 0.8}
              dense: {use_bias: false}
            """
        )
    )
    analysed = load(tmp_path / "variant.yaml")
    assert attrs(analysed, "u1_bn").momentum == 0.8
    assert attrs(analysed, "u1_bn").epsilon == 0.01  # kept from the base
    assert attrs(analysed, "u1_conv").padding == "same"
    assert analysed.sections["defaults"]["dense"] == {"use_bias": False}


def test_xception_tiny_sets_momentum_by_default() -> None:
    text = (Path(__file__).parent.parent / "examples/specs/xception_tiny.yaml").read_text()
    assert "defaults:\n  batch_norm: {momentum: 0.9}" in text
    assert "momentum" not in text.split("defaults:")[1].split("\n", 2)[2]


def test_an_error_in_a_node_caused_by_a_default_names_the_default() -> None:
    text = textwrap.dedent(
        """\
        xgraph: 1
        name: shrinking
        inputs:
          - {name: image, shape: [8, 8, 3]}
        defaults:
          conv2d: {kernel_size: 9}
        nodes:
          - {name: conv, op: conv2d, filters: 4}
        """
    )
    exc = error(text)
    assert exc.message == "node 'conv': window 9x9 is larger than its padded input 8x8"
    assert str(exc.location) == "d.yaml:6:25"  # the default, where the fix goes
    assert "'kernel_size' of node 'conv' is set by 'defaults:' here" in exc.notes
    assert "node 'conv' is written at d.yaml:8:5" in exc.notes


def test_set_changes_a_default_without_editing_the_spec() -> None:
    analysed = loads(SPEC, ["defaults.batch_norm.momentum=0.8", "defaults.conv2d.padding=valid"])
    assert attrs(analysed, "u1_bn").momentum == 0.8
    assert attrs(analysed, "u1_bn").epsilon == 0.01  # the spec's other defaults stay
    assert attrs(analysed, "own").momentum == 0.5  # a node's own value still wins
    assert attrs(analysed, "u1_conv").padding == "valid"
    assert summary_dict(analysed)["defaults"]["batch_norm"]["momentum"] == 0.8


def test_set_adds_a_default_for_an_op_the_spec_leaves_alone() -> None:
    analysed = loads(SPEC, ["defaults.conv2d.use_bias=false"])
    assert attrs(analysed, "u1_conv").use_bias is False
    assert attrs(analysed, "valid").use_bias is False


@pytest.mark.parametrize(
    ("assignment", "message", "column", "hint"),
    [
        ("defaults.batchnorm.momentum=0.9", "unknown op 'batchnorm'", 1, "'batch_norm'"),
        ("defaults.batch_norm.momentm=0.9", "has no attribute 'momentm'", 1, "'momentum'"),
        ("defaults.batch_norm=0.9", "names no spec-wide default", 1, "defaults.OP.ATTRIBUTE"),
        (
            "defaults.batch_norm.momentum=abc",
            "'momentum': Input should be a valid number",
            30,
            None,
        ),
    ],
)
def test_a_bad_default_set_is_located_at_the_set(
    assignment: str, message: str, column: int, hint: str | None
) -> None:
    with pytest.raises(SpecError) as caught:
        loads(SPEC, ["m=0.5", assignment])
    error = caught.value
    assert message in error.message
    assert (error.location.file, error.location.line, error.location.column) == ("--set", 2, column)
    if hint is not None:
        assert hint in (error.hint or "")
