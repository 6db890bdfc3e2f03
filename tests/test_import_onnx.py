"""`xgraph import` of ONNX files: a channels-first model written by hand in torch and
exported by torch.onnx.export (symmetric and asymmetric padding, a depthwise convolution
with a multiplier, ReLU6 as Clip, a residual sum, a concatenation, a 'same' max pool, a
linear head), and xgraph's own ONNX files, imported and checked against ONNX Runtime node by
node; hostile ONNX files refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import CliRunner
from torch import nn

from xgraph.api import load

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
        self.head = nn.Linear(32, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.stem(x)))
        x = self.dw(self.pad(x))
        y = nn.functional.relu6(self.pw(x))
        x = torch.cat([x + y, self.pool(y)], 1)
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
    assert result.out.count("all 12 nodes agree") == 3, result.out
    text = spec.read_text()
    assert "{name: stem, op: conv2d, filters: 8, kernel_size: 3, strides: 2, padding: same}" in text
    assert "{name: pad, op: zero_pad2d, padding: [[0, 1], [0, 1]]}" in text
    assert "op: depthwise_conv2d, kernel_size: 3, strides: 2, depth_multiplier: 2" in text
    assert "{name: Clip, op: activation, activation: relu6}" in text
    assert "op: max_pool2d, pool_size: 3, strides: 1, padding: same" in text
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


OWN = {
    "tiny_cnn": (ROOT / "examples" / "specs" / "tiny_cnn.yaml", ()),
    "tiny_resnet": (ROOT / "examples" / "specs" / "tiny_resnet.yaml", ()),
    "xception": (ROOT / "specs" / "xception.yaml", ("--set", "input_shape=[71,71,3]")),
}


@pytest.mark.parametrize("spec", sorted(OWN))
def test_xgraph_s_own_onnx_file_imports_back(spec: str, tmp_path: Path, run_cli: CliRunner) -> None:
    """The file `xgraph build --backend onnx` writes imports to the spec's graph (fused
    activations, global pools and separable convolutions one node again; a dropout, the
    identity in ONNX, is gone; a 1x1 convolution's 'same' is 'valid', the same computation)
    and agrees with ONNX Runtime."""
    source, sets = OWN[spec]
    path = tmp_path / f"{spec}.onnx"
    assert run_cli("build", source, "--backend", "onnx", "-o", path, *sets).code == 0
    out = tmp_path / f"{spec}.yaml"
    result = run_cli("import", path, "-o", out, "--check")
    assert result.code == 0, result.err
    assert result.out.count("nodes agree") == 3
    assert load(out).total_params == load(source, [s for s in sets if s != "--set"]).total_params
    diff = run_cli("diff", out, source, *sets)
    changes = diff.out.split("added:", 1)[1]
    assert "removed: 0 nodes\nchanged: " in changes
    assert changes.startswith(" 0 nodes") or "drop (dropout)" in changes
    for line in changes.split("changed: ", 1)[1].splitlines()[1:]:
        assert line.endswith("padding: valid -> same"), line  # 1x1 stride-1 convolutions


def test_hostile_onnx_files_are_refused(tmp_path: Path, run_cli: CliRunner) -> None:
    from onnx import TensorProto, helper, numpy_helper

    image = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    out = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 3, 8, 8])
    cycle = helper.make_graph(
        [helper.make_node("Relu", ["b"], ["a"]), helper.make_node("Add", ["x", "a"], ["b"])],
        "cycle",
        [image],
        [out],
    )
    path = tmp_path / "cycle.onnx"
    onnx.save(helper.make_model(cycle), str(path))
    result = run_cli("import", path, "-o", tmp_path / "x.yaml")
    assert result.code == 2 and f"{path}: error: not a valid ONNX graph" in result.err
    weight = numpy_helper.from_array(np.ones((3, 3, 1, 1), np.float32), "w")
    conv = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["b"])], "outside", [image], [out], [weight]
    )
    model = helper.make_model(conv)
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../secret.bin"
    (tmp_path.parent / "secret.bin").write_bytes(b"\0" * 36)
    path = tmp_path / "outside.onnx"
    path.write_bytes(model.SerializeToString())  # onnx.save itself refuses such a file
    result = run_cli("import", path, "-o", tmp_path / "x.yaml")
    assert result.code == 2
    assert "keeps its data in '../secret.bin', outside the model's folder" in result.err
    assert not (tmp_path / "x.yaml").exists()
