"""The pytest plugin on a user's folder of specs, in a pytest run of its own: a good spec
passes every check, and a spec using an op whose torch lowering is deliberately wrong fails
its numeric checks naming the node. (The project's own specs/ go through the same plugin:
see xgraph_specs in pyproject.toml.)"""

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
from xgraph.lowering import LayerCall
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
