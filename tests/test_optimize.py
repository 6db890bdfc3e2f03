"""The inference build (`build --optimize`): each pass keeps every node's value, over every
spec in specs/, and the backends' build options (ONNX layout, torch AOTInductor package)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import DEFINITION_SPECS, ROOT, CliRunner

from xgraph.api import load, loads
from xgraph.backend import load_backend
from xgraph.errors import SpecError
from xgraph.ir.analysis import AnalysedGraph
from xgraph.passes.optimize import PASS_NAMES, optimize
from xgraph.reports.parity import probe_every_node, relative_error
from xgraph.weights.initial import random_weights

SPEC_FILES = DEFINITION_SPECS  # a thin variant is its base's graph at other parameters
SMALL = ["input_shape=[75, 75, 3]"]  # as the pytest plugin runs specs/: every node, quickly
TINY = ROOT / "examples" / "specs" / "tiny_cnn.yaml"


def _per_node_errors(
    analysed: AnalysedGraph, backend_name: str, passes: list[str] | None = None, seed: int = 3
) -> tuple[dict[str, float], set[str]]:
    """Every node of the optimised graph against the original node whose value it computes
    (same input, same weights, same backend), and the names of the optimised outputs."""
    weights = random_weights(analysed, seed=seed)
    optimized = optimize(analysed, weights, passes)
    backend = load_backend(backend_name)
    original = probe_every_node(analysed, weights, [backend])[backend_name]
    rewritten = probe_every_node(optimized.analysed, optimized.weights, [backend])[backend_name]
    value_of = optimized.value_of(analysed)
    errors = {
        name: relative_error(value, original[value_of[name]]) for name, value in rewritten.items()
    }
    return errors, set(optimized.analysed.graph.outputs)


@pytest.mark.parametrize("spec", SPEC_FILES, ids=lambda path: path.stem)
def test_every_pass_keeps_every_node_of_every_spec(spec: Path) -> None:
    analysed = load(spec, SMALL)
    errors, outputs = _per_node_errors(analysed, "torch")
    assert errors, "nothing compared"
    worst = max(errors, key=errors.__getitem__)
    assert errors[worst] <= 1e-4, f"{worst}: {errors[worst]:.2e}"
    for name in outputs:
        assert errors[name] <= 1e-5, f"output {name}: {errors[name]:.2e}"


@pytest.mark.parametrize("backend", ["keras", "onnx"])
def test_the_passes_serve_every_backend(backend: str) -> None:
    """The same rewritten graph, run by the other backends, node by node."""
    analysed = load(ROOT / "specs" / "xception.yaml", ["input_shape=[71, 71, 3]"])
    errors, outputs = _per_node_errors(analysed, backend)
    assert max(errors.values()) <= 1e-4
    assert all(errors[name] <= 1e-5 for name in outputs)


def test_xception_loses_its_batch_norms_and_fused_activations() -> None:
    analysed = load(ROOT / "specs" / "xception.yaml", SMALL)
    optimized = optimize(analysed, random_weights(analysed))
    assert [(r.name, r.removed) for r in optimized.ran] == [
        ("drop_identities", 0),
        ("fold_batch_norm", 40),
        ("fuse_activation", 24),
    ]
    ops = [node.op for node in optimized.analysed.graph.nodes]
    assert "batch_norm" not in ops
    assert optimized.analysed.non_trainable_params == 0


CHAIN = """
xgraph: 1
name: chain
inputs: [{name: x, shape: [8, 8, 3]}]
nodes:
  - {name: conv, op: conv2d, filters: 4, kernel_size: 3, use_bias: false}
  - {name: drop, op: dropout, rate: 0.5}
  - {name: norm, op: batch_norm}
  - {name: act, op: activation, activation: relu6}
  - {name: same, op: activation, activation: linear}
  - {name: dense, op: dense, units: 3, activation: tanh}
  - {name: soft, op: activation, activation: softmax}
"""


def test_a_chain_collapses_into_two_layers_computing_the_same_values() -> None:
    analysed = loads(CHAIN)
    weights = random_weights(analysed, seed=1)
    optimized = optimize(analysed, weights)
    graph = optimized.analysed.graph
    assert [(n.name, n.op) for n in graph.nodes] == [
        ("x", "input"),
        ("conv", "conv2d"),
        ("dense", "dense"),
        ("soft", "activation"),  # dense already has an activation: softmax stays a node
    ]
    assert graph["conv"].attrs.activation == "relu6" and graph["conv"].attrs.use_bias
    assert optimized.value_of(analysed) == {
        "x": "x",
        "conv": "same",
        "dense": "dense",
        "soft": "soft",
    }
    errors, _ = _per_node_errors(analysed, "torch")
    assert max(errors.values()) <= 1e-5


def test_nothing_merges_across_a_shared_value_or_an_output() -> None:
    analysed = loads(
        "xgraph: 1\nname: shared\ninputs: [{name: x, shape: [5, 5, 3]}]\nnodes:\n"
        "  - {name: c, op: conv2d, filters: 3, kernel_size: 1}\n"
        "  - {name: r, op: activation, activation: relu}\n"
        "  - {name: d, op: dropout, rate: 0.1}\n"
        "  - {op: add, inputs: [d, c]}\n"
        "  - {name: out, op: dropout, rate: 0.1}\n"
    )
    optimized = optimize(analysed, random_weights(analysed))
    names = [node.name for node in optimized.analysed.graph.nodes]
    assert "r" in names and "out" in names and "d" not in names
    assert optimized.analysed.graph.outputs == ("out",)


def test_an_unknown_pass_is_named_with_the_nearest() -> None:
    analysed = loads(CHAIN)
    with pytest.raises(SpecError, match="unknown optimisation pass 'fold_batchnorm'") as error:
        optimize(analysed, random_weights(analysed), ["fold_batchnorm"])
    assert error.value.hint == "did you mean 'fold_batch_norm'?"
    assert set(PASS_NAMES) == {"drop_identities", "fold_batch_norm", "fuse_activation"}


def test_build_optimize_says_which_passes_ran(run_cli: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "tiny.onnx"
    result = run_cli("build", TINY, "--backend", "onnx", "--optimize", "-o", target)
    assert result.code == 0, result.err
    assert "pass fold_batch_norm: 1 nodes fewer" in result.out
    assert "pass fuse_activation: 1 nodes fewer" in result.out
    assert "layout: nchw" in result.out
    ops = [node.op_type for node in onnx.load(target).graph.node]
    assert "BatchNormalization" not in ops
    only = run_cli("build", TINY, "--backend", "onnx", "--fold-batch-norm", "-o", target)
    assert "pass fold_batch_norm" in only.out and "fuse_activation" not in only.out


def test_onnx_layout_option(run_cli: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "tiny.onnx"
    result = run_cli("build", TINY, "--backend", "onnx", "--option", "layout=nhwc", "-o", target)
    assert result.code == 0, result.err
    assert "layout: nhwc" in result.out
    (image,) = onnx.load(target).graph.input
    assert [d.dim_param or d.dim_value for d in image.type.tensor_type.shape.dim] == [
        "batch",
        32,
        32,
        3,
    ]


@pytest.mark.parametrize(
    ("backend", "option", "message"),
    [
        ("keras", "layout=nhwc", "the keras backend has no option 'layout' (its options: none)"),
        ("onnx", "layout=nwhc", "option layout is one of nchw, nhwc, not 'nwhc'"),
        ("onnx", "layout", "--option takes NAME=VALUE, not 'layout'"),
        ("torch", "compile=yes", "option compile is one of no, aoti, not 'yes'"),
    ],
)
def test_a_bad_option_is_a_clean_error(
    run_cli: CliRunner, tmp_path: Path, backend: str, option: str, message: str
) -> None:
    target = tmp_path / f"tiny.{ {'keras': 'keras', 'onnx': 'onnx', 'torch': 'pt2'}[backend] }"
    result = run_cli("build", TINY, "--backend", backend, "--option", option, "-o", target)
    assert result.code == 2
    assert message in result.err
    assert not target.exists()


def test_torch_aoti_package_runs_without_xgraph_and_matches_the_module(tmp_path: Path) -> None:
    from torch._inductor import aoti_load_package

    analysed = load(TINY)
    weights = random_weights(analysed, seed=4)
    backend = load_backend("torch", {"compile": "aoti"})
    model = backend.build(analysed, weights)
    backend.save(model, analysed, tmp_path / "tiny.pt2")
    package = aoti_load_package(str(tmp_path / "tiny.pt2"))
    x = torch.rand(3, 3, 32, 32)
    with torch.inference_mode():
        expected, got = model(x), package(x)
    assert float((got - expected).abs().max() / expected.abs().max()) <= 1e-5
    assert np.isfinite(got.numpy()).all()
