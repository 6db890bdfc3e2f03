"""The `xgraph` command: validate, summary, graph and schema, run in-process through
`xgraph.cli.main`, and the Python API it is a thin layer over."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import numpy as np
import pytest
import yaml

from xgraph.api import load, loads
from xgraph.cli import main

if TYPE_CHECKING:
    from conftest import CliRunner

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# validate and summary


def test_validate_reports_the_node_and_parameter_counts(
    run_cli: CliRunner, xception_path: Path
) -> None:
    result = run_cli("validate", xception_path)
    assert result.code == 0
    assert result.out == f"{xception_path}: ok (134 nodes, 22,910,480 parameters)\n"


def test_validate_takes_several_specs_and_overrides(
    run_cli: CliRunner, xception_path: Path
) -> None:
    sets = ["--set", "include_top=false", "--set", "pooling=avg"]
    result = run_cli("validate", xception_path, xception_path, *sets)
    assert result.code == 0
    assert result.out.count("ok (133 nodes, 20,861,480 parameters)") == 2


def test_validate_reports_every_bad_spec_and_still_checks_the_rest(
    run_cli: CliRunner, xception_path: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("xgraph: 1\nname: t\ninputs: [{name: x, shape: [4]}]\nnodes: [{op: relu}]\n")
    result = run_cli("validate", bad, xception_path, bad)
    assert result.code == 2
    assert result.err.count(f"{bad}:4:14: error: unknown op 'relu'") == 2
    assert result.out == f"{xception_path}: ok (134 nodes, 22,910,480 parameters)\n"


def test_summary_table_ends_with_the_totals(run_cli: CliRunner, xception_path: Path) -> None:
    result = run_cli("summary", xception_path)
    assert result.code == 0
    assert result.out.startswith('Model: "xception"\n')
    assert "Total params: 22,910,480" in result.out
    assert "Trainable params: 22,855,952" in result.out
    assert "Non-trainable params: 54,528" in result.out
    assert "MACs: 8,357,403,496 (8.36G)" in result.out


def test_summary_table_has_a_row_per_node(run_cli: CliRunner, xception_path: Path) -> None:
    lines = run_cli("summary", xception_path).out.splitlines()
    rows = {line.split()[0]: line.split() for line in lines if "(" in line and ")" in line}
    assert rows["block1_conv1"][1:7] == ["(conv2d)", "(None,", "149,", "149,", "32)", "864"]
    assert rows["predictions"][1:6] == ["(dense)", "(None,", "1000)", "2,049,000", "2.05M"]
    assert sum(1 for line in lines if "(separable_conv2d)" in line) == 34


def test_summary_takes_overrides(run_cli: CliRunner, xception_path: Path) -> None:
    result = run_cli("summary", xception_path, "--set", "include_top=false")
    assert "Total params: 20,861,480" in result.out


def test_summary_json_is_the_table_in_data(run_cli: CliRunner, xception_path: Path) -> None:
    summary = run_cli("summary", xception_path, "--json").json()
    assert summary["inputs"] == ["input_layer"]
    assert summary["outputs"] == ["predictions"]
    assert summary["params"]["classes"] == 1000
    assert len(summary["nodes"]) == 134


# The Python API


def test_python_api_gives_the_numbers_of_the_cli(run_cli: CliRunner, xception_path: Path) -> None:
    summary = run_cli("summary", xception_path, "--json").json()
    analysed = load(xception_path)
    assert analysed.name == summary["name"]
    assert analysed.total_params == summary["total_params"] == 22_910_480
    assert analysed.trainable_params == summary["trainable_params"]
    assert analysed.non_trainable_params == summary["non_trainable_params"]
    assert analysed.macs == summary["macs"]
    assert [
        [n.name, n.op, list(n.inputs), list(analysed.shapes[n.name])] for n in analysed.graph
    ] == [[n["name"], n["op"], n["inputs"], n["output_shape"]] for n in summary["nodes"]]


def test_python_api_takes_the_overrides_of_the_cli(run_cli: CliRunner, xception_path: Path) -> None:
    overrides = ["include_top=false", "pooling=max", "middle_flow_blocks=1"]
    sets = [arg for override in overrides for arg in ("--set", override)]
    summary = run_cli("summary", xception_path, "--json", *sets).json()
    analysed = load(xception_path, overrides)
    assert (analysed.total_params, analysed.macs) == (summary["total_params"], summary["macs"])
    assert analysed.graph.outputs == ("max_pool",)


def test_loads_compiles_text_like_load(xception_path: Path) -> None:
    from_text = loads(xception_path.read_text(), file=str(xception_path))
    from_file = load(xception_path)
    assert from_text.total_params == from_file.total_params
    assert [n.location for n in from_text.graph] == [n.location for n in from_file.graph]


# graph


def test_graph_writes_dot_with_a_cluster_per_block(
    run_cli: CliRunner, xception_path: Path, tmp_path: Path
) -> None:
    output = tmp_path / "x.dot"
    result = run_cli("graph", xception_path, "-o", output)
    assert result.code == 0
    assert result.out == f"wrote {output}\n"
    dot = output.read_text()
    assert dot.startswith('digraph "xception" {')
    assert "subgraph cluster_" in dot
    # blocks 2 to 13 are block instances; block1 and block14 are written out in the spec.
    assert dot.count("subgraph cluster_") == 12
    assert 'label="block5"; style=dashed;' in dot
    assert '"block2_pool" -> "block2_add";' in dot
    assert '"block2_residual_bn" -> "block2_add";' in dot
    assert dot.count(" -> ") == sum(len(n.inputs) for n in load(xception_path).graph)


def test_graph_nests_clusters_as_blocks_nest(run_cli: CliRunner, tmp_path: Path) -> None:
    spec = tmp_path / "nested.yaml"
    spec.write_text(NESTED)
    output = tmp_path / "nested.dot"
    assert run_cli("graph", spec, "-o", output).code == 0
    depth, depths = 0, {}
    for line in output.read_text().splitlines():
        depth -= line.strip() == "}"
        depths[line.strip().split(" [")[0].split(";")[0]] = depth
        depth += line.endswith("{")
    assert depths['"x"'] == 1
    assert depths['label="outer"'] == depths['"outer_bn"'] == 2
    assert depths['label="inner"'] == depths['"inner_conv"'] == 3


def test_graph_dot_is_read_by_graphviz(
    run_cli: CliRunner, xception_path: Path, tmp_path: Path, dot_program: str
) -> None:
    output = tmp_path / "x.dot"
    run_cli("graph", xception_path, "-o", output)
    parsed = subprocess.run(
        [dot_program, "-Tcanon", str(output)], capture_output=True, text=True, check=False
    )
    assert parsed.returncode == 0, parsed.stderr


def test_graph_draws_svg_through_graphviz(
    run_cli: CliRunner, xception_path: Path, tmp_path: Path, dot_program: str
) -> None:
    output = tmp_path / "x.svg"
    assert run_cli("graph", xception_path, "-o", output).code == 0
    svg = output.read_text()
    assert "<svg" in svg
    assert "block14_sepconv2_act" in svg


def test_graph_draws_png_through_graphviz(
    run_cli: CliRunner, xception_path: Path, tmp_path: Path, dot_program: str
) -> None:
    output = tmp_path / "x.png"
    assert run_cli("graph", xception_path, "-o", output).code == 0
    assert output.read_bytes().startswith(PNG_MAGIC)


def test_graph_refuses_an_unknown_format(
    run_cli: CliRunner, xception_path: Path, tmp_path: Path
) -> None:
    output = tmp_path / "x.txt"
    result = run_cli("graph", xception_path, "-o", output)
    assert result.code == 2
    assert "error: cannot draw to 'x.txt': use a .dot, .svg or .png file" in result.err
    assert not output.exists()
    assert list(tmp_path.iterdir()) == []


# schema


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["schema"]) == 0
    return json.loads(out.getvalue())


def test_schema_prints_a_json_schema(run_cli: CliRunner) -> None:
    result = run_cli("schema")
    assert result.code == 0
    schema = result.json()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_schema_accepts_the_xception_spec(schema: dict[str, Any], xception_path: Path) -> None:
    spec = yaml.safe_load(xception_path.read_text())
    errors = [e.json_path for e in jsonschema.Draft202012Validator(schema).iter_errors(spec)]
    assert errors == []


def test_schema_accepts_every_attribute_spelling(schema: dict[str, Any]) -> None:
    spec = yaml.safe_load(SPELLINGS)
    loads(SPELLINGS)  # the compiler accepts it too
    errors = [e.json_path for e in jsonschema.Draft202012Validator(schema).iter_errors(spec)]
    assert errors == []


def test_schema_rejects_an_unknown_conv2d_attribute(
    schema: dict[str, Any], xception_path: Path
) -> None:
    spec = yaml.safe_load(xception_path.read_text())
    spec["nodes"][0]["kernel"] = 3
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(spec))
    assert [e.json_path for e in errors] == ["$.nodes[0]"]


@pytest.mark.parametrize(
    ("training", "valid"),
    [
        ({"optimizer": {"name": "adam", "learning_rate": "${lr}"}, "batch_size": 64}, True),
        ({"optimizer": "rmsprop", "schedule": {"name": "cosine", "alpha": 0.1}}, True),
        ({"optimizer": {"name": "sgd", "lerning_rate": 0.1}}, False),
        ({"schedule": {"name": "step", "alpha": 0.1}}, False),
        ({"optimizer": "adamm"}, False),
        ({"bach_size": 8}, False),
    ],
)
def test_schema_checks_the_training_section(
    schema: dict[str, Any], xception_path: Path, training: dict[str, Any], valid: bool
) -> None:
    spec = yaml.safe_load(xception_path.read_text())
    spec["training"] = training
    errors = [e.json_path for e in jsonschema.Draft202012Validator(schema).iter_errors(spec)]
    assert errors == ([] if valid else ["$.training"])


def test_schema_describes_each_op(schema: dict[str, Any]) -> None:
    conv = schema["$defs"]["Node_conv2d"]
    assert conv["properties"]["op"]["const"] == "conv2d"
    assert set(conv["required"]) == {"op", "filters", "kernel_size"}
    assert conv["additionalProperties"] is False
    assert "Node_input" not in schema["$defs"]  # inputs are declared under 'inputs'


# Start-up cost


def test_validate_imports_no_deep_learning_framework(root: Path) -> None:
    """The core commands never import torch, tensorflow or keras (no timing is asserted)."""
    code = (
        "import sys; from xgraph.cli import main; main(['validate','specs/xception.yaml']); "
        "print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('torch','tensorflow','keras')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "specs/xception.yaml: ok (134 nodes, 22,910,480 parameters)",
        "[]",
    ]


NESTED = """\
xgraph: 1
name: nested
inputs:
  - {name: x, shape: [4, 4, 2]}
blocks:
  leaf:
    nodes:
      - {name: "${name}_conv", op: conv2d, filters: 2, kernel_size: 1}
  pair:
    nodes:
      - {use: leaf, name: inner}
      - {name: "${name}_bn", op: batch_norm}
nodes:
  - {use: pair, name: outer}
"""

SPELLINGS = """\
xgraph: 1
name: spellings
params:
  k: {type: int, default: 3}
inputs:
  - {name: x, shape: [16, 16, 4]}
nodes:
  - {op: zero_pad2d, padding: 1}
  - {op: zero_pad2d, padding: [1, 2]}
  - {op: zero_pad2d, padding: [[0, 1], [1, 0]]}
  - {op: conv2d, filters: 4, kernel_size: 3, strides: [1, 2], padding: [[1, 1], [0, 0]]}
  - {op: conv2d, filters: 4, kernel_size: "${k}", padding: same, activation: none}
  - {op: depthwise_conv2d, kernel_size: [3, 1], depth_multiplier: 2, activation: null}
  - {op: separable_conv2d, filters: 8, kernel_size: [3, "${k}"], dilation_rate: 2, padding: same}
  - {op: zero_pad2d, padding: [[1, "${k - 2}"], "${[0, 0]}"]}
  - {op: batch_norm, center: false, epsilon: 0.001}
  - {op: max_pool2d, pool_size: 2, strides: 1}
  - {op: avg_pool2d, pool_size: [2, 2], padding: same}
  - {op: activation, activation: relu}
  - {op: global_avg_pool, keepdims: true}
  - {op: flatten}
  - {op: dropout, rate: 0.5}
  - {op: dense, units: 10, activation: softmax, when: true}
"""


# The command line as users of git, cargo and pip expect it


def test_version(run_cli: CliRunner, capsys: pytest.CaptureFixture[str]) -> None:
    from xgraph import __version__

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"xgraph {__version__}\n"


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["biuld", "spec.yaml"], "  hint: did you mean 'build'?"),
        (["sumary", "spec.yaml"], "  hint: did you mean 'summary'?"),
        (
            ["validate", "specs/xception.yaml", "--sett", "a=1"],
            "  hint: '--sett' is not an option: did you mean '--set'?",
        ),
        (
            ["build", "specs/xception.yaml", "--backnd", "torch"],
            "  hint: '--backnd' is not an option: did you mean '--backend'?",
        ),
    ],
)
def test_mistyped_commands_and_options_get_a_suggestion(
    capsys: pytest.CaptureFixture[str], argv: list[str], hint: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == hint
    assert "Traceback" not in err


def _commands() -> list[str]:
    import argparse

    from xgraph.cli import make_parser

    (subparsers,) = [a for a in make_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(subparsers.choices)


@pytest.mark.parametrize("command", _commands())
def test_every_command_explains_its_arguments_and_shows_examples(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "\nexamples:\n  xgraph " + command in text
    options = text.split("options:", 1)[1].split("examples:", 1)[0]
    # every argument has a description: no option line stands alone without help text
    lines = [line for line in options.splitlines() if line.strip()]
    for line, following in zip(lines, [*lines[1:], ""], strict=True):
        if line.startswith("  -") and len(line.split("  ")) < 3 and line.strip() != "-h, --help":
            assert following.startswith(" " * 8), f"{command}: '{line.strip()}' has no help"
    if "SPEC" in text.split("options:")[0]:
        assert "the YAML spec file" in text or "one or more spec files" in text


def test_build_without_output_writes_the_spec_name_in_the_current_folder(
    root: Path, tmp_path: Path
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "xgraph",
            "build",
            str(root / "specs" / "xception.yaml"),
            "--backend",
            "torch",
            "--set",
            "input_shape=[71,71,3]",
            "--set",
            "classes=3",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "no -o given: writing xception.pt2 in the current folder" in result.stderr
    assert result.stdout.startswith("wrote xception.pt2 (torch)\n")
    assert (tmp_path / "xception.pt2").is_file()


def test_set_values_are_read_as_spec_values_are(run_cli: CliRunner, tmp_path: Path) -> None:
    """A date-like word stays a string, as in a spec file; messages speak YAML."""
    spec = tmp_path / "tagged.yaml"
    spec.write_text(
        "xgraph: 1\nname: tagged\nparams:\n  tag: {type: str, default: x}\n"
        "  flag: {type: bool, default: true}\n"
        "inputs:\n  - {name: image, shape: [4, 4, 3]}\n"
        "nodes:\n  - {name: pool, op: global_avg_pool}\n"
    )
    assert run_cli("summary", spec, "--json", "--set", "tag=2024-01-01").json()["params"] == {
        "tag": "2024-01-01",
        "flag": True,
    }
    result = run_cli("validate", spec, "--set", "flag=null")
    assert result.err == "--set:1:6: error: parameter 'flag' is a bool, got null\n"
    result = run_cli("validate", spec, "--set", "tag=true")
    assert result.err == "--set:1:5: error: parameter 'tag' is a str, got true\n"


# The JSON documents, against the schemas `xgraph schema --document` prints


@pytest.mark.parametrize(
    ("document", "argv"),
    [
        ("summary", ["summary", "examples/specs/tiny_cnn.yaml", "--json"]),
        ("parity", ["parity", "examples/specs/tiny_cnn.yaml", "--json"]),
        ("parity-numeric", ["parity", "examples/specs/tiny_cnn.yaml", "--numeric", "--json"]),
        ("ops", ["ops", "--json"]),
    ],
)
def test_json_output_fits_its_published_schema(
    run_cli: CliRunner, root: Path, monkeypatch: pytest.MonkeyPatch, document: str, argv: list
) -> None:
    import jsonschema

    monkeypatch.chdir(root)
    schema = run_cli("schema", "--document", document).json()
    jsonschema.Draft202012Validator.check_schema(schema)
    result = run_cli(*argv)
    assert result.code == 0, result.err
    jsonschema.validate(result.json(), schema)
    with pytest.raises(jsonschema.ValidationError):  # the schema is strict, not a formality
        jsonschema.validate(
            {**result.json(), "unexpected": 1} if document != "ops" else [{}], schema
        )


def test_parity_json_lists_differences_that_fit_the_schema(
    run_cli: CliRunner, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing parity report (a lowering given a bias it should not have) fits too."""
    from dataclasses import replace

    import jsonschema

    from xgraph.backend.rules import op_rules

    rules = op_rules("torch")
    original = rules["conv2d"]

    def with_bias(analysed, node):
        call = original.lower(analysed, node)
        call.kwargs["bias"] = True
        return call

    monkeypatch.setitem(rules, "conv2d", replace(original, lower=with_bias))
    monkeypatch.chdir(root)
    result = run_cli("parity", "examples/specs/tiny_cnn.yaml", "--json")
    assert result.code == 1
    report = result.json()
    assert [d["name"] for d in report["differences"]] == ["conv2d"]
    jsonschema.validate(report, run_cli("schema", "--document", "parity").json())


def test_one_seed_gives_both_backends_the_same_weights_from_the_cli(
    run_cli: CliRunner, root: Path, tmp_path: Path
) -> None:
    """`build --seed N` with each backend: the saved models hold identical weights (and a
    different seed gives different ones), read back from the saved files themselves."""
    import torch

    from xgraph.api import load
    from xgraph.weights.formats import read_weights

    spec = root / "examples" / "specs" / "tiny_cnn.yaml"
    analysed = load(spec)
    read: dict[str, dict] = {}
    for seed in (7, 8):
        for backend, suffix in (("torch", ".pt2"), ("keras", ".keras")):
            path = tmp_path / f"m{seed}{suffix}"
            result = run_cli("build", spec, "--backend", backend, "-o", path, "--seed", seed)
            assert result.code == 0, result.err
        state = torch.export.load(str(tmp_path / f"m{seed}.pt2")).module().state_dict()
        torch.save({k: v.contiguous() for k, v in state.items()}, tmp_path / f"m{seed}.pt")
        read[f"torch{seed}"] = read_weights(tmp_path / f"m{seed}.pt", analysed)
        read[f"keras{seed}"] = read_weights(tmp_path / f"m{seed}.keras", analysed)
    assert read["torch7"].keys() == read["keras7"].keys()
    for key in read["torch7"]:
        np.testing.assert_array_equal(read["torch7"][key], read["keras7"][key], err_msg=key)
    assert not np.array_equal(read["keras7"]["conv2d/kernel"], read["keras8"]["conv2d/kernel"])
    np.testing.assert_array_equal(read["torch8"]["conv2d/kernel"], read["keras8"]["conv2d/kernel"])


def test_table_rows_for_several_specs(run_cli: CliRunner, root: Path) -> None:
    rows = run_cli(
        "table", root / "specs" / "xception.yaml", root / "specs" / "vgg16.yaml", "--json"
    ).json()
    assert [(r["spec"], r["total_params"], r["weighted_layers"]) for r in rows] == [
        ("xception", 22_910_480, 41),
        ("vgg16", 138_357_544, 16),
    ]
    assert rows[0]["macs"] == 8_357_403_496
    assert rows[1]["input"] == [[224, 224, 3]]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--backends", "torch,torch"], "error: --backends names a backend twice: 'torch,torch'"),
        (["--batch", "0"], "error: --batch must be at least 1, got 0"),
    ],
)
def test_numeric_parity_refuses_checks_that_cannot_fail(
    run_cli: CliRunner, root: Path, extra: list[str], message: str
) -> None:
    result = run_cli("parity", root / "examples" / "specs" / "tiny_cnn.yaml", "--numeric", *extra)
    assert (result.code, result.err.splitlines()[0]) == (2, message)
