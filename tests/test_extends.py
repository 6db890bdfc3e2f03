"""Variants by extension (`extends`), and the rounding functions of expressions.

The located errors of `extends` are in the bad spec corpus (tests/bad_specs/extends_*.yaml);
these tests cover what the corpus cannot: errors located in another file than the one
compiled, the merge itself, and the variants in specs/.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from xgraph.api import load, loads
from xgraph.errors import SpecError
from xgraph.spec.expressions import ExpressionError, evaluate
from xgraph.spec.extends import load_yaml

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
CORPUS_BASES = Path(__file__).parent / "bad_specs" / "extends"

BASE = """\
xgraph: 1
name: base
params:
  width: {type: int, default: 4}
inputs:
  - {name: image, shape: [8, 8, 3]}
blocks:
  unit:
    params:
      filters: {type: int}
    nodes:
      - {name: "${name}_conv", op: conv2d, filters: "${filters}", kernel_size: 3, padding: same}
      - {name: "${name}_relu", op: activation, activation: relu}
nodes:
  - {name: conv, op: conv2d, filters: "${width}", kernel_size: 3, padding: same}
  - {use: unit, name: u1, args: {filters: 8}}
  - {name: pool, op: global_avg_pool}
  - {name: logits, op: dense, units: 10}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def error_of(path: Path, overrides: tuple[str, ...] = ()) -> SpecError:
    with pytest.raises(SpecError) as caught:
        load(path, overrides)
    return caught.value


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return write(tmp_path, "base.yaml", BASE)


def names(path: Path, overrides: tuple[str, ...] = ()) -> list[str]:
    return [node.name for node in load(path, overrides).graph.nodes]


# --- the aligned Xceptions and the intermediate-ReLU variant --------------------------------


@pytest.mark.parametrize(
    ("spec", "parameters", "statistics", "gmacs"),
    [
        ("xception41", 26_969_560, 115_312, 9.204),
        ("xception65", 39_916_312, 185_200, 13.853),
        ("xception71", 42_338_736, 198_976, 17.947),
    ],
)
def test_aligned_xceptions_match_timm(
    spec: str, parameters: int, statistics: int, gmacs: float
) -> None:
    """timm 1.0.31's counts (REFERENCE.md): parameters, BN running stats, GMACs at 299."""
    analysed = load(SPECS / f"{spec}.yaml")
    assert analysed.trainable_params == parameters
    assert analysed.non_trainable_params == statistics
    assert round(analysed.macs / 1e9, 3) == gmacs


def test_xception65_and_71_share_the_blocks_of_41() -> None:
    assert (
        load_yaml(SPECS / "xception65.yaml").data["blocks"]
        == (load_yaml(SPECS / "xception41.yaml").data["blocks"])
    )
    source = load_yaml(SPECS / "xception71.yaml")
    entry = [item["name"] for item in source.data["nodes"] if "use" in item][:5]
    assert entry == ["entry1", "entry2", "entry3", "entry4", "entry5"]
    # the inherited items point into the file that wrote them, the inserted ones into 71
    assert source.where.value(("nodes", 6)).file.endswith("xception41.yaml")
    assert source.where.value(("nodes", 9)).file.endswith("xception71.yaml")


def test_xception65_middle_flow_depth_is_a_parameter() -> None:
    assert load(SPECS / "xception65.yaml", ["middle_flow_blocks=8"]).total_params == (
        load(SPECS / "xception41.yaml").total_params
    )


def test_intermediate_relu_puts_bn_and_relu_inside_every_separable_conv() -> None:
    base = load(SPECS / "xception.yaml")
    variant = load(SPECS / "xception_intermediate_relu.yaml")
    separable = [n for n in base.graph.nodes if n.op == "separable_conv2d"]
    assert len(separable) == 34
    assert not [n for n in variant.graph.nodes if n.op == "separable_conv2d"]
    by_name = {node.name: node for node in variant.graph.nodes}
    for node in separable:
        pointwise = by_name[node.name]
        act = by_name[pointwise.inputs[0]]
        bn = by_name[act.inputs[0]]
        depthwise = by_name[bn.inputs[0]]
        assert (pointwise.op, act.op, bn.op, depthwise.op) == (
            "conv2d",
            "activation",
            "batch_norm",
            "depthwise_conv2d",
        )
        assert pointwise.attrs.kernel_size == (1, 1)
        assert act.attrs.activation == "relu"
        assert depthwise.inputs == node.inputs
    # the only new weights: a BatchNorm on each depthwise output
    channels = sum(base.shapes[n.inputs[0]][-1] for n in separable)
    assert variant.non_trainable_params - base.non_trainable_params == 2 * channels
    assert variant.trainable_params - base.trainable_params == 2 * channels
    assert variant.macs == base.macs


# --- merging ---------------------------------------------------------------------------------


def test_params_merge_into_inherited_declarations(tmp_path: Path, base: Path) -> None:
    child = write(
        tmp_path,
        "child.yaml",
        """\
        xgraph: 1
        extends: base.yaml
        name: child
        params:
          width: {default: 6}
          alpha: {type: float, default: 0.5}
        override:
          conv: {filters: "${int(width * alpha)}"}
        """,
    )
    analysed = load(child)
    assert analysed.name == "child"
    assert analysed.params == {"width": 6, "alpha": 0.5}
    assert analysed.shapes["conv"] == (8, 8, 3)
    assert load(child, ["width=10"]).shapes["conv"] == (8, 8, 5)


def test_override_of_a_use_item_merges_its_args(tmp_path: Path, base: Path) -> None:
    child = write(
        tmp_path,
        "child.yaml",
        "xgraph: 1\nextends: base.yaml\noverride: {u1: {args: {filters: 5}}}\n",
    )
    assert load(child).shapes["u1_conv"] == (8, 8, 5)


def test_remove_replace_and_insert_keep_the_default_chain(tmp_path: Path, base: Path) -> None:
    child = write(
        tmp_path,
        "child.yaml",
        """\
        xgraph: 1
        extends: base.yaml
        remove: [conv]
        replace:
          pool: [{name: gmp, op: global_max_pool}]
        insert:
          - before: u1
            nodes: [{name: bn, op: batch_norm}]
          - after: pool
            nodes: [{name: drop, op: dropout, rate: 0.5}]
        """,
    )
    analysed = load(child)
    assert [n.name for n in analysed.graph.nodes] == [
        "image", "bn", "u1_conv", "u1_relu", "gmp", "drop", "logits",
    ]  # fmt: skip
    assert analysed.graph["drop"].inputs == ("gmp",)


def test_a_block_with_nodes_replaces_the_inherited_block(tmp_path: Path, base: Path) -> None:
    child = write(
        tmp_path,
        "child.yaml",
        """\
        xgraph: 1
        extends: base.yaml
        blocks:
          unit:
            params: {filters: {type: int}, rate: {type: float, default: 0.1}}
            nodes:
              - {name: "${name}_drop", op: dropout, rate: "${rate}"}
        """,
    )
    assert names(child) == ["image", "conv", "u1_drop", "pool", "logits"]


def test_a_block_can_be_edited_by_the_names_its_nodes_are_written_with(
    tmp_path: Path, base: Path
) -> None:
    child = write(
        tmp_path,
        "child.yaml",
        """\
        xgraph: 1
        extends: base.yaml
        blocks:
          unit:
            params: {rate: {type: float, default: 0.25}}
            override:
              "${name}_conv": {kernel_size: 1}
            insert:
              - after: "${name}_conv"
                nodes: [{name: "${name}_drop", op: dropout, rate: "${rate}"}]
        """,
    )
    analysed = load(child)
    assert analysed.graph["u1_conv"].attrs.kernel_size == (1, 1)
    assert analysed.graph["u1_drop"].attrs.rate == 0.25
    assert analysed.graph["u1_relu"].inputs == ("u1_drop",)


def test_extends_chains_through_several_files(tmp_path: Path, base: Path) -> None:
    write(tmp_path, "sub/middle.yaml", "xgraph: 1\nextends: ../base.yaml\nname: middle\n")
    top = write(
        tmp_path, "top.yaml", "xgraph: 1\nextends: sub/middle.yaml\nparams: {width: {default: 2}}\n"
    )
    analysed = load(top)
    assert (analysed.name, analysed.shapes["conv"]) == ("middle", (8, 8, 2))


def test_a_chain_of_eight_is_allowed() -> None:
    """The corpus's extends_too_deep.yaml adds a ninth link to this chain of eight."""
    assert load(CORPUS_BASES / "chain1.yaml").name == "chain"


def test_loads_resolves_extends_from_the_folder_of_file(base: Path) -> None:
    text = "xgraph: 1\nextends: base.yaml\nname: in_memory\n"
    assert loads(text, file=str(base.parent / "variant.yaml")).name == "in_memory"


# --- locations -------------------------------------------------------------------------------


def test_an_error_in_an_inherited_node_points_into_the_base(tmp_path: Path) -> None:
    write(
        tmp_path, "base.yaml", BASE.replace("kernel_size: 3, padding: same}", "kernel_size: 0}", 1)
    )
    child = write(tmp_path, "child.yaml", "xgraph: 1\nextends: base.yaml\nname: child\n")
    error = error_of(child)
    assert error.location is not None
    # the block's conv, as written in the base (line 12), though u1 is made in the child's merge
    assert (Path(error.location.file).name, error.location.line) == ("base.yaml", 12)
    assert "kernel_size" in error.message


def test_an_error_in_an_override_points_at_the_override(tmp_path: Path, base: Path) -> None:
    child = write(
        tmp_path, "child.yaml", "xgraph: 1\nextends: base.yaml\noverride:\n  logits: {units: 0}\n"
    )
    error = error_of(child)
    assert error.location is not None
    assert (error.location.file, error.location.line, error.location.column) == (
        str(child),
        4,
        19,
    )


def test_an_error_in_an_inserted_node_points_at_it(tmp_path: Path, base: Path) -> None:
    child = write(
        tmp_path,
        "child.yaml",
        """\
        xgraph: 1
        extends: base.yaml
        insert:
          - after: conv
            nodes: [{name: bad, op: conv2d, filters: 4}]
        """,
    )
    error = error_of(child)
    assert error.location is not None
    assert (Path(error.location.file).name, error.location.line) == ("child.yaml", 5)
    assert "missing attribute 'kernel_size'" in error.message


def test_a_cycle_through_two_files_names_each_link(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "xgraph: 1\nextends: b.yaml\n")
    b = write(tmp_path, "b.yaml", "xgraph: 1\nextends: a.yaml\n")
    error = error_of(a)
    assert error.message == f"'extends' makes a cycle: {a} -> {b} -> {a}"
    assert str(error.location) == f"{a}:2:10"
    assert error.notes == (f"'{b}' extends '{a}' at {b}:2:10",)


def test_an_ambiguous_name_is_refused_with_where_it_is_written(tmp_path: Path) -> None:
    write(
        tmp_path,
        "base.yaml",
        BASE.replace(
            '      - {name: "${name}_relu", op: activation, activation: relu}\n',
            '      - {name: "${name}_act", op: activation, activation: relu, when: true}\n'
            '      - {name: "${name}_act", op: activation, activation: tanh, when: false}\n',
        ),
    )
    child = write(
        tmp_path,
        "child.yaml",
        'xgraph: 1\nextends: base.yaml\nblocks:\n  unit:\n    remove: ["${name}_act"]\n',
    )
    error = error_of(child)
    assert "'${name}_act' names 2 items of the nodes of block 'unit'" in error.message
    assert [Path(note.split(" at ")[1]).name for note in error.notes] == [
        "base.yaml:13:9",
        "base.yaml:14:9",
    ]


def test_a_folder_is_not_a_spec_to_extend(tmp_path: Path) -> None:
    (tmp_path / "folder.yaml").mkdir()
    child = write(tmp_path, "child.yaml", "xgraph: 1\nextends: folder.yaml\n")
    assert error_of(child).message.endswith("it is not a file")


def test_the_base_must_be_a_whole_spec(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "xgraph: 1\nname: base\n")
    child = write(tmp_path, "child.yaml", "xgraph: 1\nextends: base.yaml\n")
    error = error_of(child)
    assert error.message == "missing key 'inputs'"
    assert Path(error.location.file).name == "base.yaml"


# --- int() and round() -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("int(32 * 0.75)", 24),
        ("int(-2.5)", -2),
        ("round(8 * 1.5)", 12),
        ("round(2.5)", 2),  # halves to even, as Python rounds
        ("round(3.5)", 4),
        ("int(x // 8 * 8) if x > 8 else 8", 48),  # a make-divisible rule, max() by hand
        ("ceil(x / 8)", 7),
        ("ceil(4)", 4),
        ("ceil(-1.5)", -1),
    ],
)
def test_int_and_round_give_whole_numbers(text: str, value: int) -> None:
    result = evaluate(text, {"x": 50.0})
    assert (result, type(result)) == (value, int)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("max(x, 8)", 50.0),
        ("max(3, 8)", 8),
        ("min(x, 8)", 8),
        ("'abc'[1]", "b"),
        ("'abc'[-1]", "c"),
    ],
)
def test_max_min_and_string_indexing(text: str, value: object) -> None:
    result = evaluate(text, {"x": 50.0})
    assert (result, type(result)) == (value, type(value))


@pytest.mark.parametrize(
    "text", ["int()", "round(1, 2)", "int(x=1)", "int(True)", "max(1)", "ceil(1, 2)", "pow(2, 3)"]
)
def test_other_calls_are_refused(text: str) -> None:
    with pytest.raises(ExpressionError):
        evaluate(text, {})


def test_a_width_multiplier_with_a_rounding_rule(tmp_path: Path) -> None:
    """MobileNet's alpha as Keras applies it: int(filters * alpha)."""
    spec = write(
        tmp_path,
        "mobile.yaml",
        """\
        xgraph: 1
        name: mobile
        params:
          alpha: {type: float, default: 1.0, choices: [0.25, 0.5, 0.75, 1.0]}
          depth: {type: float, default: 1.0}
        inputs:
          - {name: image, shape: [32, 32, 3]}
        blocks:
          unit:
            nodes:
              - {name: "${name}_conv", op: conv2d, filters: "${int(64 * alpha)}", kernel_size: 1}
        nodes:
          - {name: stem, op: conv2d, filters: "${int(32 * alpha)}", kernel_size: 3}
          - {use: unit, name: "unit${i}", repeat: "${round(3 * depth)}"}
          - {name: pool, op: global_avg_pool}
        """,
    )
    analysed = load(spec, ["alpha=0.75", "depth=1.5"])
    assert analysed.shapes["stem"][-1] == 24
    assert analysed.shapes["unit3_conv"][-1] == 48
    assert "unit4_conv" not in analysed.graph.names


def test_extends_through_a_symlinked_folder_follows_the_real_files(tmp_path: Path) -> None:
    """`link -> real/sub`: `link/leaf.yaml` extends `../mid.yaml`, which the OS finds in
    `real/`, and mid's own `extends: grand.yaml` is next to it there."""
    from xgraph.api import load

    real = tmp_path / "real"
    (real / "sub").mkdir(parents=True)
    (real / "grand.yaml").write_text(
        "xgraph: 1\nname: grand\ninputs: [{name: x, shape: [4, 4, 3]}]\n"
        "nodes:\n  - {name: pool, op: global_avg_pool}\n"
    )
    (real / "mid.yaml").write_text("xgraph: 1\nextends: grand.yaml\nname: mid\n")
    (real / "sub" / "leaf.yaml").write_text("xgraph: 1\nextends: ../mid.yaml\nname: leaf\n")
    (tmp_path / "link").symlink_to(real / "sub")
    assert load(tmp_path / "link" / "leaf.yaml").name == "leaf"
