"""`xgraph import` of ONNX files: a channels-first model written by hand in torch and
exported by torch.onnx.export (symmetric and asymmetric padding, TensorFlow's or not, a
depthwise convolution
with a multiplier, ReLU6 as Clip, a residual sum, a concatenation, a 'same' max pool, a
linear head), and xgraph's own ONNX files, imported and checked against ONNX Runtime node by
node; hostile ONNX files refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import CliRunner
from torch import nn
from zoo_harness import as_float32, relative_error

from xgraph.api import load
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ops.windows import resolve_padding

ROOT = Path(__file__).resolve().parent.parent


class HandWritten(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)  # symmetric: TF's 'same' at 17
        self.bn = nn.BatchNorm2d(8)
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))  # asymmetric: a zero_pad2d node
        self.dw = nn.Conv2d(8, 16, 3, stride=2, groups=8)
        self.pw = nn.Conv2d(16, 16, 1)
        self.pool = nn.MaxPool2d(3, 1, 1)
        # PyTorch's padding where TensorFlow's 'same' would pad (0, 1): the conv's own
        self.down = nn.Conv2d(32, 32, 3, stride=2, padding=1)
        self.smooth = nn.AvgPool2d(3, 1, 1)  # counts its padding: a zero_pad2d node first
        self.head = nn.Linear(32, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.stem(x)))
        x = self.dw(self.pad(x))
        y = nn.functional.relu6(self.pw(x))
        x = self.smooth(self.down(torch.cat([x + y, self.pool(y)], 1)))
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.head(x)


def test_a_torch_export_imports_and_agrees_with_onnx_runtime(
    tmp_path: Path, run_cli: CliRunner
) -> None:
    torch.manual_seed(0)
    net = HandWritten().eval()
    net.bn.running_mean.normal_()
    net.bn.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "net.onnx"
    torch.onnx.export(net, (torch.randn(1, 3, 17, 17),), str(path), dynamo=False)
    spec, weights = tmp_path / "net.yaml", tmp_path / "net.safetensors"
    result = run_cli("import", path, "-o", spec, "--weights-out", weights, "--check")
    assert result.code == 0, result.err
    assert result.out.count("all 14 nodes agree") == 3, result.out
    text = spec.read_text()
    assert "{name: stem, op: conv2d, filters: 8, kernel_size: 3, strides: 2, padding: same}" in text
    assert "{name: pad, op: zero_pad2d, padding: [[0, 1], [0, 1]]}" in text
    assert "op: depthwise_conv2d, kernel_size: 3, strides: 2, depth_multiplier: 2" in text
    assert "{name: Clip, op: activation, activation: relu6}" in text
    assert "op: max_pool2d, pool_size: 3, strides: 1, padding: same" in text
    assert "{name: down, op: conv2d, filters: 32, kernel_size: 3, strides: 2, padding: 1}" in text
    assert "{name: smooth_pad, op: zero_pad2d}" in text  # 1 on every side: the default
    # the torch build of the spec, with the written weights, computes torch's numbers
    analysed = load(spec)
    from xgraph.backend import load_backend
    from xgraph.weights.formats import read_weights

    image = np.random.default_rng(1).normal(size=(2, 17, 17, 3)).astype(np.float32)
    backend = load_backend("torch")
    got = backend.predict(backend.build(analysed, read_weights(weights, analysed)), [image])[0]
    with torch.no_grad():
        want = net(torch.from_numpy(image.transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# One spec of each family of specs/, at a small input size: its own ONNX file (with random
# weights) imports back to its graph and computes ONNX Runtime's numbers.
FAMILIES = {
    "convnext_tiny": 32,
    "densenet121": 32,
    "efficientnet_b0": 32,
    "efficientnet_v2_b0": 32,
    "inception_resnet_v2": 75,
    "inception_v3": 75,
    "mobilenet": 32,
    "mobilenet_v2": 32,
    "mobilenet_v3_small": 32,
    "nasnet_mobile": 32,
    "resnet50": 32,
    "resnet50_v2": 32,
    "vgg16": 32,
    "xception41": 71,
}
# What an ONNX file cannot say, and so may differ from the spec: a dropout or drop-path is
# an Identity (a linear activation); a convolution's padding is read back as 'same' where
# its amounts are TensorFlow's (a 1x1's 'same' pads nothing: 'valid').
INFERENCE_ONLY = {"dropout", "stochastic_depth"}


def _same_computation(change: Any, spec: AnalysedGraph) -> bool:
    node = spec.graph[change.name]
    fields = {name: (before, after) for name, before, after in change.changes}
    if node.op in INFERENCE_ONLY:
        return fields.get("op") == ("activation", node.op)
    if "strides" in fields and node.op in ("max_pool2d", "avg_pool2d"):  # None: pool_size
        pool = node.attrs.pool_size
        if {s or pool for s in fields.pop("strides")} != {pool}:
            return False
    if "padding" in fields:  # the same amounts, said another way ('same' of a 1x1: none)
        size = spec.input_shape_of(node)[0][:2]
        window = (node.attrs.kernel_size, node.attrs.strides, node.attrs.dilation_rate)
        if len({resolve_padding(p, size, *window) for p in fields.pop("padding")}) != 1:
            return False
    return all(as_float32(a) == as_float32(b) for a, b in fields.values())


def assert_same_network(imported: AnalysedGraph, spec: AnalysedGraph) -> None:
    """The imported spec is the spec's graph, node for node, with its counts; where an
    attribute differs, only as an ONNX file cannot tell (see INFERENCE_ONLY, strides left
    to the pool size, 'same' of a 1x1 convolution, numbers as float32)."""
    from xgraph.reports.diff import diff_graphs

    totals = ("total_params", "trainable_params", "non_trainable_params")
    assert [getattr(imported, t) for t in totals] == [getattr(spec, t) for t in totals]
    diff = diff_graphs(imported, spec)
    assert not diff.added and not diff.removed, (diff.added, diff.removed)
    assert all(_same_computation(c, spec) for c in diff.changed), diff.changed


OWN = {
    "tiny_cnn": (ROOT / "examples" / "specs" / "tiny_cnn.yaml", ()),
    "tiny_resnet": (ROOT / "examples" / "specs" / "tiny_resnet.yaml", ()),
    "xception": (ROOT / "specs" / "xception.yaml", ("--set", "input_shape=[71,71,3]")),
}


@pytest.mark.parametrize("spec", sorted(OWN))
def test_xgraph_s_own_onnx_file_imports_back(spec: str, tmp_path: Path, run_cli: CliRunner) -> None:
    """The file `xgraph build --backend onnx` writes imports to the spec's graph (fused
    activations, global pools and separable convolutions one node again) and agrees with
    ONNX Runtime node by node."""
    source, sets = OWN[spec]
    path = tmp_path / f"{spec}.onnx"
    assert run_cli("build", source, "--backend", "onnx", "-o", path, *sets).code == 0
    out = tmp_path / f"{spec}.yaml"
    result = run_cli("import", path, "-o", out, "--check")
    assert result.code == 0, result.err
    assert result.out.count("nodes agree") == 3
    assert_same_network(load(out), load(source, [s for s in sets if s != "--set"]))


def _each_set(sets: list[str]) -> list[str]:
    return [word for setting in sets for word in ("--set", setting)]


@pytest.mark.parametrize("spec", sorted(FAMILIES))
def test_every_family_s_onnx_file_imports_back(
    spec: str, tmp_path: Path, run_cli: CliRunner
) -> None:
    from xgraph_onnx.importer import source_outputs

    from xgraph.backend import load_backend
    from xgraph.weights.formats import read_weights

    size = FAMILIES[spec]
    source = ROOT / "specs" / f"{spec}.yaml"
    # the logits, not a softmax of random weights' near-equal scores, are compared
    logits = "classifier_activation" in load(source).params
    sets = [f"input_shape=[{size},{size},3]", *(["classifier_activation=none"] * logits)]
    path, out = tmp_path / f"{spec}.onnx", tmp_path / f"{spec}.yaml"
    built = run_cli("build", source, "--backend", "onnx", "-o", path, *_each_set(sets))
    assert built.code == 0, built.err
    weights = tmp_path / f"{spec}.safetensors"
    result = run_cli("import", path, "-o", out, "--weights-out", weights)
    assert result.code == 0, result.err
    imported = load(out)
    assert_same_network(imported, load(source, sets))
    image = np.random.default_rng(2).uniform(-1, 1, size=(2, size, size, 3)).astype(np.float32)
    output = imported.graph.outputs[0]
    want = source_outputs(path, None, [output], [image])[output]
    backend = load_backend("torch")
    build = backend.build(imported, read_weights(weights, imported))
    got = backend.predict(build, [image])[0]
    assert relative_error(got, want) < 1e-5
