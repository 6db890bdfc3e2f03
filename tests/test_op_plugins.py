"""Op plugins: the example plugin (examples/xgraph_example_ops, installed by `make test`)
through the whole pipeline with no edit of xgraph, and packages that clash or lack a rule,
installed for one subprocess as real distributions on its path."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, CliRunner
from safetensors.numpy import load_file, save_file

from xgraph.api import load
from xgraph.backend import load_backend
from xgraph.backend.rules import op_rules
from xgraph.ops import REGISTRY
from xgraph.weights.initial import random_weights

PLUGIN = ROOT / "examples" / "xgraph_example_ops"
SPEC = PLUGIN / "specs" / "affine_net.yaml"
PLUGIN_OPS = ("channel_affine", "mish")


def test_the_example_plugin_registers_its_ops_and_rules() -> None:
    for op in PLUGIN_OPS:
        assert REGISTRY[op].origin == "xgraph-example-ops"
        assert op in op_rules("torch")
        assert op in op_rules("keras")
    assert REGISTRY["conv2d"].origin == "xgraph"


def test_validate_and_summary(run_cli: CliRunner) -> None:
    result = run_cli("validate", SPEC)
    assert (result.code, result.out) == (0, f"{SPEC}: ok (12 nodes, 1,146 parameters)\n")
    summary = run_cli("summary", SPEC, "--json").json()
    nodes = {node["name"]: node for node in summary["nodes"]}
    assert nodes["stem_affine"]["trainable_params"] == 32  # scale and offset, 16 channels
    assert nodes["branch_scale"]["trainable_params"] == 16  # offset: false
    assert nodes["features_affine"]["output_shape"] == [16]
    assert nodes["join_act"]["trainable_params"] == 0
    assert (summary["trainable_params"], summary["non_trainable_params"]) == (1114, 32)


def test_parameter_and_numeric_parity(run_cli: CliRunner) -> None:
    assert run_cli("parity", SPEC).code == 0
    result = run_cli("parity", SPEC, "--numeric", "--json", "--tol", "1e-5")
    report = result.json()
    assert result.code == 0, report
    assert len(report["nodes"]) == 11  # every node but the input
    assert report["max_relative_error"] <= 1e-5


def test_builds_load_without_xgraph_and_compute_the_spec(run_cli: CliRunner, tmp_path: Path):
    """Both saved artifacts, loaded by their framework alone (plus the plugin's Keras layer
    registration), compute what the other backend's build computes."""
    import torch

    from xgraph_keras.framework import keras

    analysed = load(SPEC)
    weights = random_weights(analysed, seed=5)
    canonical = tmp_path / "w.safetensors"
    save_file(weights, str(canonical))
    for backend, suffix in (("torch", ".pt2"), ("keras", ".keras")):
        result = run_cli(
            "build",
            SPEC,
            "--backend",
            backend,
            "-o",
            tmp_path / f"m{suffix}",
            "--weights",
            canonical,
        )
        assert result.code == 0, result.err
    x = np.random.default_rng(0).normal(size=(3, 32, 32, 3)).astype(np.float32)
    program = torch.export.load(str(tmp_path / "m.pt2")).module()
    from_torch = program(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()).detach().numpy()
    import xgraph_example_ops.keras_layers  # noqa: F401 (registers ChannelAffine with Keras)

    from_keras = keras.saving.load_model(tmp_path / "m.keras").predict_on_batch(x)
    np.testing.assert_allclose(from_torch, from_keras, rtol=1e-5, atol=1e-6)
    keras_build = load_backend("keras")
    (expected,) = keras_build.predict(keras_build.build(analysed, weights), [x])
    np.testing.assert_allclose(from_keras, expected, rtol=1e-6, atol=1e-7)


def test_weights_round_trip_canonical_torch_keras(run_cli: CliRunner, tmp_path: Path) -> None:
    """canonical -> torch state dict -> Keras .weights.h5 -> canonical, and a .keras archive
    read back with h5py: every tensor bit-exact, the plugin's weights included."""
    analysed = load(SPEC)
    weights = random_weights(analysed, seed=9)
    start = tmp_path / "start.safetensors"
    save_file(weights, str(start))
    chain = [start, tmp_path / "a.pt", tmp_path / "b.weights.h5", tmp_path / "end.safetensors"]
    for source, target in itertools.pairwise(chain):
        result = run_cli("weights", SPEC, "--from", source, "-o", target)
        assert result.code == 0, result.err
    end = load_file(str(chain[-1]))
    assert end.keys() == weights.keys()
    assert {"stem_affine/scale", "stem_affine/offset", "branch_scale/scale"} <= end.keys()
    for key, value in weights.items():
        np.testing.assert_array_equal(end[key], value, err_msg=key)
    archive = tmp_path / "m.keras"
    assert run_cli("build", SPEC, "--backend", "keras", "-o", archive, "--weights", start).code == 0
    assert run_cli("weights", SPEC, "--from", archive, "-o", tmp_path / "k.safetensors").code == 0
    from_archive = load_file(str(tmp_path / "k.safetensors"))
    for key, value in weights.items():
        np.testing.assert_array_equal(from_archive[key], value, err_msg=key)


def test_ops_lists_plugin_ops_with_their_package_and_backends(run_cli: CliRunner) -> None:
    entries = {entry["name"]: entry for entry in run_cli("ops", "--json").json()}
    assert set(REGISTRY) == set(entries)
    affine = entries["channel_affine"]
    assert affine["origin"] == "xgraph-example-ops"
    assert affine["backends"] == ["keras", "onnx", "torch"]
    assert affine["attributes"] == [{"name": "offset", "required": False, "default": True}]
    conv = entries["conv2d"]
    assert conv["origin"] == "xgraph"
    assert [a["name"] for a in conv["attributes"] if a["required"]] == ["kernel_size", "filters"]
    text = run_cli("ops").out
    assert "channel_affine  (xgraph-example-ops; backends: keras, onnx, torch)\n" in text
    assert "  attributes: offset=true\n" in text


# Packages installed for one subprocess: a dist-info folder with entry points beside modules.


def _install_fake_package(site: Path, dist: str, modules: dict[str, str], entry_points: str):
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


def _xgraph(site: Path, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, "-m", "xgraph", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


TORCH_ONLY_SITE = ROOT / "examples" / "torch_only_ops"  # op 'copy': a torch rule, no keras one


@pytest.fixture
def torch_only_op(tmp_path: Path) -> Path:
    """The docs' package adding op 'copy' with no keras rule, on the path of each run; the
    runs happen in a scratch folder holding its spec."""
    shutil.copy(TORCH_ONLY_SITE / "copier.yaml", tmp_path / "copier.yaml")
    return TORCH_ONLY_SITE


def test_an_op_a_backend_cannot_lower_is_a_located_error(
    torch_only_op: Path, tmp_path: Path
) -> None:
    cwd = tmp_path
    result = _xgraph(
        torch_only_op, "build", "copier.yaml", "--backend", "keras", "-o", "c.keras", cwd=cwd
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "copier.yaml:7:5: error: op 'copy' (node 'copied') has no lowering for the keras backend",
        "  hint: backends that lower 'copy': torch",
        "  note: 'copy' comes from package 'torch-only-ops'",
    ]
    assert not (cwd / "c.keras").exists()
    parity = _xgraph(torch_only_op, "parity", "copier.yaml", "--numeric", cwd=cwd)
    assert parity.returncode == 2
    assert "no lowering for the keras backend" in parity.stderr
    assert "running" not in parity.stderr  # refused before either backend built anything
    built = _xgraph(
        torch_only_op, "build", "copier.yaml", "--backend", "torch", "-o", "c.pt2", cwd=cwd
    )
    assert built.returncode == 0, built.stderr
    listed = _xgraph(torch_only_op, "ops", cwd=cwd)
    assert "copy  (torch-only-ops; backends: torch)" in listed.stdout


def test_an_op_name_clash_names_both_packages(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    clash = (TORCH_ONLY_SITE / "copy_ops.py").read_text().replace('"copy",', '"conv2d",')
    _install_fake_package(
        site, "clashing-ops", {"clash_ops": clash}, "[xgraph.ops]\nclash = clash_ops:OPS\n"
    )
    result = _xgraph(site, "validate", ROOT / "specs" / "xception.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        "error: op 'conv2d' is defined twice: by package 'xgraph' and by package 'clashing-ops'"
    )
    assert "Traceback" not in result.stderr


def test_a_rule_clash_names_both_packages(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    rules = (TORCH_ONLY_SITE / "copy_torch_rules.py").read_text().replace('{"copy":', '{"conv2d":')
    _install_fake_package(
        site, "rule-clash", {"clash_rules": rules}, "[xgraph.op_rules]\ntorch = clash_rules:RULES\n"
    )
    result = _xgraph(site, "ops", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (  # packages are read in name order
        "error: op 'conv2d' has two torch rules: from package 'rule-clash' and from package "
        "'xgraph'"
    )


def test_a_plugin_that_fails_to_import_is_named(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install_fake_package(
        site,
        "broken-ops",
        {"broken_ops": "import no_such_module\n"},
        "[xgraph.ops]\nbroken = broken_ops:OPS\n",
    )
    result = _xgraph(site, "validate", ROOT / "specs" / "xception.yaml", cwd=tmp_path)
    assert result.returncode == 2
    first = result.stderr.splitlines()[0]
    assert "cannot load 'broken_ops:OPS'" in first
    assert "package 'broken-ops'" in first
    assert "ModuleNotFoundError" in first
    assert "Traceback" not in result.stderr


def test_rules_for_a_backend_that_is_not_installed_are_ignored(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install_fake_package(
        site, "jax-rules", {}, "[xgraph.op_rules]\njax = module_that_does_not_exist:RULES\n"
    )
    result = _xgraph(site, "ops", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert all("jax" not in entry["backends"] for entry in json.loads(result.stdout))


def test_a_rule_that_does_not_place_a_weight_is_a_located_error(tmp_path: Path) -> None:
    """A plugin's torch rule without a slot for one of its op's parameters: refused at the
    node before anything is built, not a KeyError from inside the build."""
    site = tmp_path / "site"
    site.mkdir()
    ops = (
        "from dataclasses import replace\n"
        "from xgraph_example_ops.ops import OPS as EXAMPLE\n"
        "OPS = [replace(EXAMPLE[0], name='affine2')]\n"
    )
    rules = (
        "from xgraph_torch.rules.base import TorchRule, vector\n"
        "from xgraph_example_ops.torch_rules import lower_channel_affine\n"
        "RULES = {'affine2': TorchRule(lower_channel_affine, {'scale': vector('weight')})}\n"
    )
    _install_fake_package(
        site,
        "half-ruled",
        {"half_ops": ops, "half_rules": rules},
        "[xgraph.ops]\nhalf = half_ops:OPS\n\n[xgraph.op_rules]\ntorch = half_rules:RULES\n",
    )
    spec = tmp_path / "half.yaml"
    spec.write_text(
        "xgraph: 1\nname: half\ninputs:\n  - {name: x, shape: [4, 4, 3]}\n"
        "nodes:\n  - {name: scaled, op: affine2}\n"
    )
    result = _xgraph(site, "build", spec, "--backend", "torch", "-o", "h.pt2", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        f"{spec}:6:5: error: the torch rule of op 'affine2' (node 'scaled') does not place "
        "its weights offset"
    )
    assert not (tmp_path / "h.pt2").exists()


def test_reading_a_keras_file_into_a_graph_keras_cannot_build_is_a_located_error(
    torch_only_op: Path, tmp_path: Path
) -> None:
    (tmp_path / "w.weights.h5").write_bytes(b"")
    result = _xgraph(
        torch_only_op,
        "weights",
        "copier.yaml",
        "--from",
        "w.weights.h5",
        "-o",
        "w.pt",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        "copier.yaml:7:5: error: op 'copy' (node 'copied') has no lowering for the keras backend"
    )


def test_an_op_sharing_a_keras_class_does_not_take_over_keras_files(tmp_path: Path) -> None:
    """A plugin op whose Keras layer is a Dense: files of a graph of plain dense layers
    still read, in every Keras format, with the plugin installed."""
    from xgraph_keras.framework import keras

    site = tmp_path / "site"
    site.mkdir()
    ops = (
        "from xgraph.ops.dense import OPS as DENSE_OPS\n"
        "from dataclasses import replace\n"
        "OPS = [replace(DENSE_OPS[0], name='another_dense')]\n"
    )
    rules = (
        "from xgraph_keras.rules.dense import RULES as DENSE\n"
        "RULES = {'another_dense': DENSE['dense']}\n"
    )
    _install_fake_package(
        site,
        "dense-twin",
        {"twin_ops": ops, "twin_rules": rules},
        "[xgraph.ops]\ntwin = twin_ops:OPS\n\n[xgraph.op_rules]\nkeras = twin_rules:RULES\n",
    )
    spec = tmp_path / "mlp.yaml"
    spec.write_text(
        "xgraph: 1\nname: mlp\ninputs:\n  - {name: x, shape: [6]}\n"
        "nodes:\n  - {op: dense, units: 4}\n  - {op: dense, units: 2}\n"
    )
    inputs = keras.Input((6,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(4)(inputs)))
    model.save_weights(tmp_path / "mlp.weights.h5")
    model.save(tmp_path / "mlp.keras")
    model.save(tmp_path / "mlp.h5")
    for name in ("mlp.weights.h5", "mlp.keras", "mlp.h5"):
        result = _xgraph(
            site, "weights", spec, "--from", name, "-o", "out.safetensors", cwd=tmp_path
        )
        assert result.returncode == 0, (name, result.stderr)
