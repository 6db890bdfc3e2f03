"""docs/plugins.md's walk-through, "Adding an op with weights", done: the plugin it shows is
installed from the doc's own code blocks for one subprocess, and the op is then listed with
every backend, validated with its parameters counted, lowered by every backend's rule with
every weight placed, located when its shape rule refuses an input, and (framework tier)
built and compared number by number in every pair of backends. The files it takes are the
op module and one rule module per installed backend, and nothing in xgraph is edited."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from xgraph.backend.rules import rule_backends

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "plugins.md"
OP = "pointwise_conv"
SPEC = """\
xgraph: 1
name: mixer
inputs:
  - {name: image, shape: [8, 8, 3]}
nodes:
  - {name: mix, op: pointwise_conv, filters: 4}
  - {name: narrow, op: pointwise_conv, filters: 2, use_bias: false}
"""
BAD_SPEC = """\
xgraph: 1
name: flat
inputs:
  - {name: features, shape: [6]}
nodes:
  - {name: mix, op: pointwise_conv, filters: 4}
"""
LOWERINGS = """\
from xgraph.api import load
from xgraph.backend.rules import op_rules, require_rules, rule_backends

analysed = load("mixer.yaml")
node = analysed.graph["mix"]
for backend in rule_backends():
    require_rules(analysed, backend)  # every weight of every node placed by the rule
    rule = op_rules(backend)["pointwise_conv"]
    inputs = (("image",),) if backend == "onnx" else ()  # ONNX's lowering names its inputs
    lowered = rule.lower(analysed, node, *inputs)
    print(backend, lowered)
"""


def _walk_through() -> tuple[dict[str, str], str]:
    """The walk-through's files (path -> source) and its entry points (TOML)."""
    text = DOC.read_text()
    section = text.split("\n## Adding an op with weights\n", 1)[1].split("\n## ", 1)[0]
    files = dict(
        re.findall(r"^`([\w/]+\.py)`, [^\n]*:\n\n```python\n(.*?)^```", section, re.M | re.S)
    )
    (toml,) = re.findall(r"^```toml\n(.*?)^```", section, re.M | re.S)
    return files, toml


def _install(site: Path) -> None:
    """The doc's package on `site`, beside a dist-info folder holding its entry points."""
    files, toml = _walk_through()
    for path, source in files.items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_text(source)
    (site / "pointwise_ops" / "__init__.py").touch()
    info = site / "pointwise_ops-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pointwise-ops\nVersion: 0.1\n")
    groups = tomllib.loads(toml)["project"]["entry-points"]
    (info / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in entries.items())
            for group, entries in groups.items()
        )
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The plugin installed in `tmp_path/site`; the specs written in `tmp_path`."""
    site = tmp_path / "site"
    site.mkdir()
    _install(site)
    (tmp_path / "mixer.yaml").write_text(SPEC)
    (tmp_path / "flat.yaml").write_text(BAD_SPEC)
    return site


def _run(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python ARGS` with the plugin installed: its folder first on the path, which keeps
    whatever the test run already put there."""
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, *args],
        cwd=site.parent,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_op_takes_its_module_and_one_rule_per_backend() -> None:
    files, toml = _walk_through()
    rules = {f"pointwise_ops/{backend}_rules.py" for backend in rule_backends()}
    assert set(files) == {"pointwise_ops/ops.py", *rules}, sorted(files)
    groups = tomllib.loads(toml)["project"]["entry-points"]
    assert sorted(groups["xgraph.op_rules"]) == sorted(rule_backends())
    assert list(groups["xgraph.ops"].values()) == ["pointwise_ops.ops:OPS"]


def test_the_op_is_listed_validated_and_lowered_by_every_backend(site: Path) -> None:
    listed = _run(site, "-m", "xgraph", "ops")
    backends = ", ".join(sorted(rule_backends()))
    assert f"{OP}  (pointwise-ops; backends: {backends})\n" in listed.stdout, listed.stderr
    assert "  attributes: filters (required), use_bias=true\n" in listed.stdout
    validated = _run(site, "-m", "xgraph", "validate", "mixer.yaml")
    # 3 x 4 + 4 (kernel and bias), then 4 x 2 (kernel only)
    assert validated.stdout == "mixer.yaml: ok (3 nodes, 24 parameters)\n", validated.stderr
    lowered = _run(site, "-c", LOWERINGS)
    assert lowered.returncode == 0, lowered.stderr
    assert lowered.stdout.splitlines() == [
        "keras [LayerCall(module='keras.layers', cls='Conv2D', kwargs={'filters': 4, "
        "'kernel_size': 1, 'use_bias': True, 'name': 'mix'})]",
        "onnx Lowered(nodes=[OnnxNode(op_type='Conv', inputs=('image', 'mix/kernel', "
        "'mix/bias'), outputs=('mix',), attrs={'kernel_shape': [1, 1]})], constants={})",
        "torch torch.nn.Conv2d(in_channels=3, out_channels=4, kernel_size=1, bias=True)",
    ]


def test_a_shape_the_op_refuses_is_a_located_error(site: Path) -> None:
    result = _run(site, "-m", "xgraph", "validate", "flat.yaml")
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr.startswith(
        "flat.yaml:6:5: error: node 'mix': pointwise_conv needs an input of shape (H, W, C), "
        "got (6,)\n"
    ), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.framework  # builds in every backend (tests/conftest.py's FRAMEWORK_TESTS)
def test_the_op_builds_and_agrees_in_every_backend(site: Path) -> None:
    every = ",".join(rule_backends())
    counts = _run(site, "-m", "xgraph", "parity", "mixer.yaml", "--backends", every)
    assert counts.returncode == 0, counts.stdout + counts.stderr
    numbers = _run(site, "-m", "xgraph", "parity", "mixer.yaml", "--numeric", "--backends", every)
    assert numbers.returncode == 0, numbers.stdout + numbers.stderr
    n = len(rule_backends())
    assert numbers.stdout.count("all 2 nodes agree") == n * (n - 1) // 2, numbers.stdout


def test_the_walk_through_is_plain_python() -> None:
    """The doc's blocks are whole modules (the docs' test runs each one, too)."""
    files, _ = _walk_through()
    for path, source in files.items():
        compile(textwrap.dedent(source), path, "exec")
