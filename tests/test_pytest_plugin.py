"""The pytest plugin on a user's folder of specs, in a pytest run of its own: a good spec
passes every check, and a spec using an op whose torch lowering is deliberately wrong fails
its numeric checks naming the node; each backend builds each spec once, however many checks
use it. (The project's own specs/ go through the same plugin: see xgraph_specs in
pyproject.toml.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import ROOT

WRONG_OPS = """
from xgraph.ops import Attrs, OpDef, OpExample


class TwiceAttrs(Attrs):
    pass


OPS = [
    OpDef(
        "twice",
        TwiceAttrs,
        lambda attrs, inputs: inputs[0],
        "Doubles its input.",
        examples=(OpExample("image", ((4, 4, 3),), {}),),
    )
]
"""

WRONG_RULES = """
from xgraph.backend.lowering import LayerCall
from xgraph_keras.rules.base import KerasRule, layer
from xgraph_torch.rules.base import NN, TorchRule

KERAS = {"twice": KerasRule(lambda analysed, node: [layer(node, "Rescaling", scale=2.0)])}
# The mistake under test: torch forgets to double.
TORCH = {"twice": TorchRule(lambda analysed, node: LayerCall(NN, "Identity"))}
"""

BAD_SPEC = """\
xgraph: 1
name: doubler
inputs:
  - {name: image, shape: [8, 8, 3]}
nodes:
  - {name: conv, op: conv2d, filters: 4, kernel_size: 3}
  - {name: doubled, op: twice}
  - {name: pool, op: global_avg_pool}
"""


def test_the_plugin_checks_a_users_folder_and_names_the_divergent_node(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "twice_ops.py").write_text(textwrap.dedent(WRONG_OPS))
    (site / "twice_rules.py").write_text(textwrap.dedent(WRONG_RULES))
    info = site / "twice_ops-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: twice-ops\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[xgraph.ops]\ntwice = twice_ops:OPS\n\n"
        "[xgraph.op_rules]\nkeras = twice_rules:KERAS\ntorch = twice_rules:TORCH\n"
    )
    specs = tmp_path / "my_specs"
    specs.mkdir()
    shutil.copy(ROOT / "examples" / "specs" / "tiny_cnn.yaml", specs / "good.yaml")
    (specs / "bad.yaml").write_text(BAD_SPEC)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rf",
            "--xgraph-specs",
            str(specs),
            "--xgraph-backends",
            "keras,torch",
            str(specs),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "1 failed, 5 passed" in out, out
    assert "FAILED my_specs/bad.yaml::numeric[keras-torch]" in out, out
    assert "first node beyond tolerance: doubled (twice)" in out, out


# Three framework-free backends registered like real ones: each build is logged, every node's
# output is ones, and fake_c is wrong at any node called 'pool', as a broken lowering would be.
FAKE_BACKENDS = """
import os

from collections.abc import Mapping

import numpy as np

from xgraph.ops import REGISTRY
from xgraph.weights.slots import WeightSlot


class Kept(Mapping):  # every parameter in the canonical layout, whatever its name
    def __getitem__(self, name):
        return WeightSlot()

    def __iter__(self):
        return iter(())

    def __len__(self):
        return 0


class Rule:
    weights = Kept()

    def lower(self, analysed, node):
        return None


RULES = {op: Rule() for op in REGISTRY}


class Fake:
    name = "fake_a"
    file_suffix = ".npz"
    rules = RULES
    options = {}
    layout = "nhwc"

    def build(self, analysed, weights=None):
        with open(os.environ["FAKE_BUILDS"], "a") as log:
            log.write(f"{analysed.name} {self.name}\\n")
        return analysed

    def node_param_counts(self, model, analysed):
        return {name: (c.trainable, c.non_trainable) for name, c in analysed.counts.items()}

    def value(self, node):
        return 1.0

    def predict(self, model, inputs):
        shape = lambda name: (len(inputs[0]), *model.shapes[name])
        return [np.full(shape(name), self.value(name)) for name in model.graph.outputs]


class B(Fake):
    name = "fake_b"


class C(Fake):
    name = "fake_c"

    def value(self, node):
        return 2.0 if node == "pool" else 1.0
"""

POOLED_SPEC = """\
xgraph: 1
name: pooled
inputs:
  - {name: image, shape: [8, 8, 3]}
nodes:
  - {name: conv, op: conv2d, filters: 4, kernel_size: 3}
  - {name: pool, op: global_avg_pool}
"""


def _install_fake_backends(site: Path) -> None:
    site.mkdir()
    (site / "fake_backends.py").write_text(FAKE_BACKENDS)
    info = site / "fake_backends-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-backends\nVersion: 0.1\n")
    names = {"fake_a": "Fake", "fake_b": "B", "fake_c": "C"}
    backends = "".join(f"{name} = fake_backends:{cls}\n" for name, cls in names.items())
    rules = "".join(f"{name} = fake_backends:RULES\n" for name in names)
    (info / "entry_points.txt").write_text(
        f"[xgraph.backends]\n{backends}\n[xgraph.op_rules]\n{rules}"
    )


def test_each_backend_builds_each_spec_once_for_all_its_checks(tmp_path: Path) -> None:
    """Two specs, three backends: 2 x (validate, parity, 3 numeric pairs) items and 6 builds,
    where building per item took 9 per spec; a divergence is still named at its node."""
    site = tmp_path / "site"
    _install_fake_backends(site)
    specs = tmp_path / "my_specs"
    specs.mkdir()
    shutil.copy(ROOT / "examples" / "specs" / "tiny_cnn.yaml", specs / "tiny_cnn.yaml")
    (specs / "pooled.yaml").write_text(POOLED_SPEC)
    builds = tmp_path / "builds.log"
    options = ["-rf", "--xgraph-specs", str(specs), "--xgraph-backends", "fake_a,fake_b,fake_c"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *options, str(specs)],
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
            "FAKE_BUILDS": str(builds),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    out = result.stdout
    assert "2 failed, 8 passed" in out, out + result.stderr
    assert "FAILED my_specs/pooled.yaml::numeric[fake_a-fake_c]" in out, out
    assert "FAILED my_specs/pooled.yaml::numeric[fake_b-fake_c]" in out, out
    assert "first node beyond tolerance: pool (global_avg_pool)" in out, out
    assert sorted(builds.read_text().splitlines()) == [
        f"{spec} {backend}"
        for spec in ("pooled", "tiny_cnn")
        for backend in ("fake_a", "fake_b", "fake_c")
    ]


GUARDED_TESTS = """
import subprocess
import sys


def test_imports_in_its_process():
    import openvino  # noqa: F401


def test_imports_in_a_subprocess():
    subprocess.run([sys.executable, "-c", "import openvino"], check=True)


def test_imports_nothing():
    pass
"""


def _fast_tier(folder: Path, test_file: str) -> str:
    """pytest --fast-tier with tests/conftest.py on one file of `folder`: what it printed."""
    env = {name: value for name, value in os.environ.items() if name != "PYTEST_CURRENT_TEST"}
    env["PYTHONPATH"] = os.pathsep.join([str(folder / "site"), str(ROOT / "tests")])
    options = ["-p", "no:cacheprovider", "-p", "conftest", "--fast-tier", "-q", "-rfE"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *options, test_file],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout + result.stderr


def test_the_fast_tier_fails_a_test_that_imports_a_framework(tmp_path: Path) -> None:
    """tests/conftest.py's guard (`make check`), on a stand-in framework, an empty package
    called openvino: imported by a test, by a test's subprocess, or by a module collected."""
    (tmp_path / "site" / "openvino").mkdir(parents=True)
    (tmp_path / "site" / "openvino" / "__init__.py").write_text("")
    (tmp_path / "test_guarded.py").write_text(GUARDED_TESTS)
    (tmp_path / "test_importing.py").write_text("import openvino  # noqa: F401\n")
    out = _fast_tier(tmp_path, "test_guarded.py")
    assert "2 failed, 1 passed" in out, out
    assert "test_imports_in_its_process imported openvino (in the test process)" in out, out
    assert "test_imports_in_a_subprocess imported openvino (in subprocess -c)" in out, out
    out = _fast_tier(tmp_path, "test_importing.py")
    assert "1 error" in out, out
    assert "collecting test_importing.py imported ['openvino (in the test process)']" in out, out


def test_excluded_spec_files_are_not_collected(tmp_path: Path) -> None:
    specs = tmp_path / "my_specs"
    specs.mkdir()
    for name in ("net.yaml", "net_big.yaml", "other.yaml"):
        shutil.copy(ROOT / "examples" / "specs" / "tiny_cnn.yaml", specs / name)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--collect-only",
            "-q",
            "--xgraph-specs",
            str(specs),
            "--xgraph-exclude",
            "my_specs/net_*.yaml",
            "--xgraph-exclude",
            "other.yaml",
            "-m",
            "not framework",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    collected = {line.split("::")[0] for line in result.stdout.splitlines() if "::" in line}
    assert collected == {"my_specs/net.yaml"}, result.stdout + result.stderr
