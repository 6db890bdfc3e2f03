"""Code generation from the analysed graph alone: a spec held in memory generates, the IR
carries what codegen needs (which block each instance uses, which values are a spec
parameter), the program is a frozen model, and the code is formatted for the line length
asked for."""

from __future__ import annotations

import contextlib
import dataclasses
import io
from pathlib import Path

import pytest
from conftest import import_source
from test_codegen import ROOT, XCEPTION, assert_ruff_clean

from xgraph.api import codegen, load, loads
from xgraph.cli import main
from xgraph.codegen import BlockDef, Loop, program

TEXT = """
xgraph: 1
name: held
description: A spec that exists only as text.
params:
  classes: {type: int, default: 5}
  width: {type: int, default: 4}
inputs: [{name: image, shape: [16, 16, 4]}]
blocks:
  unit:
    params:
      filters: {type: int}
    nodes:
      - {name: "${name}_conv", op: conv2d, filters: "${filters}", kernel_size: 3,
         strides: 2, padding: same}
      - {name: "${name}_act", op: activation, activation: relu}
nodes:
  - {use: unit, name: "unit${i}", args: {filters: "${width}"}, repeat: 2}
  - {name: pool, op: global_avg_pool}
  - {name: logits, op: dense, units: "${classes}"}
"""


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_a_spec_held_in_memory_generates(backend: str, tmp_path: Path) -> None:
    source = codegen(loads(TEXT), backend)
    assert "from <string>" in source.splitlines()[0]
    assert "classes" in source.split('"""', 2)[2]  # a keyword argument of the model
    module = import_source(source, tmp_path, f"held_{backend}")
    if backend == "torch":
        model = module.Held(classes=3)
        assert model.logits.out_features == 3
        assert {"unit0_1.0.conv.weight", "unit0_1.1.conv.weight"} <= set(model.state_dict())
    else:
        assert module.held(classes=3).outputs[0].shape[-1] == 3


def test_the_ir_records_blocks_and_parameter_provenance() -> None:
    analysed = load(XCEPTION)
    graph = analysed.graph
    assert graph["predictions"].param_refs == {
        "units": "classes",
        "activation": "classifier_activation",
    }
    assert graph["block7_sepconv2"].block_uses == ("middle_block",)
    assert graph["block3_pool"].block_uses == ("downsampling_block",)
    assert "Entry flow" in graph.description
    # `width` reaches its nodes through a block's argument, not as an attribute: resolved.
    held = loads(TEXT)
    assert held.graph["logits"].param_refs == {"units": "classes"}
    assert all("width" not in node.param_refs.values() for node in held.graph.nodes)


def test_a_parameter_read_anywhere_else_is_resolved() -> None:
    text = TEXT.replace("- {name: pool,", '- {name: pool, when: "${classes > 0}",')
    analysed = loads(text)
    assert analysed.graph["logits"].param_refs == {}
    assert "classes: int" not in codegen(analysed, "torch")


def test_the_program_is_frozen_and_annotated_after_collapsing_pairs() -> None:
    made = program(load(XCEPTION), "torch")
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.body = ()  # type: ignore[misc]
    blocks = {block.block: block for block in made.blocks}
    assert set(blocks) == {"downsampling_block", "middle_block"}
    downsampling: BlockDef = blocks["downsampling_block"]
    assert {p.annotation for p in downsampling.params} == {"int"}
    assert any(isinstance(item, Loop) and item.stop - item.start == 8 for item in made.body)


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_the_code_is_formatted_for_the_line_length_asked(backend: str, tmp_path: Path) -> None:
    analysed = load(XCEPTION)
    wide = codegen(analysed, backend, line_length=100)
    assert wide != codegen(analysed, backend)
    assert max(len(line) for line in wide.splitlines() if "fmt: " not in line) > 88
    assert_ruff_clean(wide, tmp_path / "wide.py", line_length=100)


@pytest.mark.parametrize("line_length", [79, 120])
def test_long_and_short_lines_stay_ruff_clean(line_length: int, tmp_path: Path) -> None:
    """Narrower and wider than the layers' own source (100 columns), which is copied as
    written: long concatenations and calls are split, copied sources kept as they are."""
    analysed = load(ROOT / "specs" / "inception_v3.yaml")
    source = codegen(analysed, "torch", line_length=line_length)
    assert_ruff_clean(source, tmp_path / "inception.py", line_length=line_length)


def test_the_command_takes_a_line_length(tmp_path: Path) -> None:
    out = tmp_path / "xception.py"
    with contextlib.chdir(ROOT), contextlib.redirect_stdout(io.StringIO()):
        argv = ["codegen", "specs/xception.yaml", "--backend", "keras", "-o", str(out)]
        code = main([*argv, "--line-length", "100"])
    assert code == 0
    assert out.read_text() == codegen(load(XCEPTION), "keras", "specs/xception.yaml", 100)


def test_generation_reads_no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Everything comes from the analysed graph: with reading and compiling a spec made
    impossible, code is still generated (from a spec loaded before)."""
    import xgraph.spec.compile
    import xgraph.spec.extends

    analysed = load(XCEPTION)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("code generation read or compiled a spec")

    monkeypatch.setattr(xgraph.spec.extends, "load_yaml", refuse)
    monkeypatch.setattr(xgraph.spec.compile, "compile_source", refuse)
    monkeypatch.setattr(xgraph.spec.compile, "validate_structure", refuse)
    assert "class Xception(nn.Module):" in codegen(analysed, "torch")
    assert "def xception(" in codegen(analysed, "keras")
