"""xgraph.testing, the per-op checks a plugin runs in its own repository: its cases are the
ops' examples, a check passes on correct ops and fails, naming what differs, on a wrong one,
and the example plugin's suite runs them from its own folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xgraph.backend import load_backend
from xgraph.ops import REGISTRY
from xgraph.testing import check_op_example, one_op_spec, op_example, op_examples

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "examples" / "xgraph_example_ops"


def test_the_cases_are_the_examples_of_the_ops_a_distribution_provides() -> None:
    plugin = op_examples("xgraph-example-ops")
    assert plugin, "the example plugin's ops have examples"
    assert {op for op, _ in plugin} == {
        name for name, op in REGISTRY.items() if op.origin == "xgraph-example-ops"
    }
    built_in = op_examples("xgraph")
    assert ("conv2d", built_in[[op for op, _ in built_in].index("conv2d")][1]) in built_in
    assert set(op_examples()) == set(plugin) | set(built_in)


def test_an_unknown_example_names_the_known_ones() -> None:
    known = REGISTRY["conv2d"].examples[0].id
    with pytest.raises(KeyError, match=f"its examples: .*{known}"):
        op_example("conv2d", "no_such_example")
    assert "name: out" in one_op_spec("conv2d", known)


def test_a_check_passes_on_a_correct_op() -> None:
    op, example = op_examples("xgraph-example-ops")[0]
    check_op_example(op, example)


def test_a_check_fails_naming_the_backend_and_weight(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend that reads a weight back wrongly is caught and named."""
    op, example = next(case for case in op_examples() if case[0] == "conv2d")
    torch_backend = load_backend("torch")
    read = type(torch_backend).get_weights

    def wrong(self, model, analysed):  # type: ignore[no-untyped-def]
        return {key: np.flip(value) for key, value in read(self, model, analysed).items()}

    monkeypatch.setattr(type(torch_backend), "get_weights", wrong)
    with pytest.raises(AssertionError, match="torch: weight out/kernel"):
        check_op_example(op, example, backends=["torch"])


def test_the_example_plugin_runs_the_checks_in_its_own_folder() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=PLUGIN,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    cases = len(op_examples("xgraph-example-ops"))
    assert f"{cases} passed" in result.stdout, result.stdout[-2000:]
