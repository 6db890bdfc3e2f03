"""Errors at the user's edit: an error found in an inherited node notes the variant's line
(or the `--set`) that caused it; an override of a node a block instance makes names the block
to edit; an input below a spec's documented minimum is refused at the value given."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from xgraph.api import load
from xgraph.errors import SpecError

SPECS = Path(__file__).resolve().parent.parent / "specs"

BASE = """\
xgraph: 1
name: base
params:
  width: {type: int, default: 4}
inputs:
  - {name: image, shape: [8, 8, 4]}
blocks:
  unit:
    params:
      filters: {type: int}
    nodes:
      - {name: "${name}_conv", op: conv2d, filters: "${filters}", kernel_size: 3, padding: same}
      - {name: "${name}_add", op: add, inputs: ["${name}_conv", "${input}"]}
nodes:
  - {name: stem, op: conv2d, filters: "${width}", kernel_size: 3, padding: same}
  - {use: unit, name: "u${i}", repeat: 2, args: {filters: 4}}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def error_of(path: Path, overrides: tuple[str, ...] = ()) -> SpecError:
    with pytest.raises(SpecError) as caught:
        load(path, overrides)
    return caught.value


def test_wrong_filters_in_an_override_note_the_variants_line(tmp_path: Path) -> None:
    variant = write(
        tmp_path,
        "variant.yaml",
        f"""\
        xgraph: 1
        extends: {SPECS / "xception.yaml"}
        name: variant
        params:
          input_shape: {{default: [71, 71, 3]}}
        override:
          block4: {{args: {{filters: 364}}}}
        """,
    )
    exc = error_of(variant)
    assert exc.location is not None and exc.location.file.endswith("xception.yaml")
    assert exc.message.startswith("node 'block5_add': add needs inputs of one shape")
    assert f"argument 'filters' of block instance 'block4' is set at {variant}:7:28" in exc.notes


def test_an_override_of_an_inherited_node_is_noted(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    variant = write(
        tmp_path,
        "variant.yaml",
        """\
        xgraph: 1
        extends: base.yaml
        override:
          stem: {filters: 6}
        """,
    )
    exc = error_of(variant)
    assert exc.location is not None and exc.location.file.endswith("base.yaml")
    assert exc.message.startswith("node 'u0_add': add needs inputs of one shape")
    assert f"'filters' of node 'stem' is set at {variant}:4:19" in exc.notes


def test_a_parameter_set_in_the_variant_or_with_set_is_noted(tmp_path: Path) -> None:
    base = write(tmp_path, "base.yaml", BASE)
    variant = write(
        tmp_path,
        "variant.yaml",
        """\
        xgraph: 1
        extends: base.yaml
        params:
          width: {default: 8}
        """,
    )
    exc = error_of(variant)
    assert exc.message.startswith("node 'u0_add': add needs inputs of one shape")
    assert f"parameter 'width' is 8, set at {variant}:4:20" in exc.notes
    exc = error_of(base, ("width=6",))
    assert "parameter 'width' is 6, set at --set:1:7" in exc.notes


def test_an_error_in_the_base_alone_has_no_edit_notes(tmp_path: Path) -> None:
    base = write(tmp_path, "base.yaml", BASE.replace("args: {filters: 4}", "args: {filters: 5}"))
    exc = error_of(base)
    assert not any("set at" in note for note in exc.notes)


def test_an_override_of_a_node_made_by_a_repeat_names_the_block(tmp_path: Path) -> None:
    variant = write(
        tmp_path,
        "variant.yaml",
        f"""\
        xgraph: 1
        extends: {SPECS / "xception.yaml"}
        override:
          block5_sepconv1: {{filters: 512}}
        """,
    )
    exc = error_of(variant)
    assert (exc.location.file, exc.location.line) == (str(variant), 4)  # type: ignore[union-attr]
    assert exc.hint is not None
    assert exc.hint.startswith(
        "'block5_sepconv1' is made by block 'middle_block' (instance 'block5'): "
        "edit it under blocks: middle_block: override: '${name}_sepconv1'"
    )
    assert "block14" not in exc.hint


def test_an_input_below_the_documented_minimum_is_refused_at_the_set() -> None:
    exc = error_of(SPECS / "xception.yaml", ("input_shape=[32,32,3]",))
    assert str(exc.location) == "--set:1:13"
    assert "must be at least [71, 71]" in exc.message
    assert "at least 71x71" in exc.message  # the documented reason
    load(SPECS / "xception.yaml", ("input_shape=[71,71,3]",))


def test_an_input_below_the_minimum_in_a_variant_is_refused_at_its_line(tmp_path: Path) -> None:
    variant = write(
        tmp_path,
        "variant.yaml",
        f"""\
        xgraph: 1
        extends: {SPECS / "xception.yaml"}
        params:
          input_shape: {{default: [64, 128, 3]}}
        """,
    )
    exc = error_of(variant)
    assert (exc.location.file, exc.location.line) == (str(variant), 4)  # type: ignore[union-attr]
    assert "must be at least [71, 71]" in exc.message


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        ("{type: int, default: 1, min: [1]}", "bounds a shape parameter's dimensions"),
        ("{type: shape, default: [8, 8], min: 1}", "are lists of sizes"),
    ],
)
def test_bounds_fit_the_parameter_type(tmp_path: Path, declaration: str, message: str) -> None:
    spec = write(
        tmp_path,
        "spec.yaml",
        f"""\
        xgraph: 1
        name: bounds
        params:
          p: {declaration}
        inputs:
          - {{name: image, shape: [8, 8, 3]}}
        nodes:
          - {{name: pool, op: global_avg_pool}}
        """,
    )
    assert message in error_of(spec).message


def test_a_shape_maximum_is_checked(tmp_path: Path) -> None:
    spec = write(
        tmp_path,
        "spec.yaml",
        """\
        xgraph: 1
        name: bounds
        params:
          size: {type: shape, default: [8, 8, 3], max: [16, 16]}
        inputs:
          - {name: image, shape: "${size}"}
        nodes:
          - {name: pool, op: global_avg_pool}
        """,
    )
    assert load(spec, ("size=[16,16,3]",)).shapes["image"] == (16, 16, 3)
    exc = error_of(spec, ("size=[32,16,3]",))
    assert "must be at most [16, 16]" in exc.message
