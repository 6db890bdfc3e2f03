"""The ONNX backend: a model emitted from the analysed graph, checked by onnx, run by ONNX
Runtime and OpenVINO without xgraph, node by node equal to the other backends.

(Every op's examples, plugin ops included, run through it in tests/test_backends.py.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import ROOT, CliRunner
from safetensors.numpy import save_file

from xgraph.api import load
from xgraph.backend import load_backend
from xgraph.reports.parity import check_numeric_parity, check_param_parity
from xgraph.weights.initial import random_weights

TINY = ROOT / "examples" / "specs" / "tiny_cnn.yaml"
TINY_RESNET = ROOT / "examples" / "specs" / "tiny_resnet.yaml"


@pytest.fixture(scope="module")
def onnx_backend():
    return load_backend("onnx")


def test_xception_model_is_valid_onnx_with_named_values_and_metadata(
    xception, onnx_backend
) -> None:
    model = onnx_backend.build(xception, random_weights(xception, seed=0))
    proto = model.proto
    onnx.checker.check_model(proto, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    (output,) = inferred.graph.output
    dims = [d.dim_param or d.dim_value for d in output.type.tensor_type.shape.dim]
    assert dims == ["batch", 1000]
    (image,) = proto.graph.input
    assert [d.dim_param or d.dim_value for d in image.type.tensor_type.shape.dim] == [
        "batch",
        3,
        299,
        299,
    ]
    produced = {value for node in proto.graph.node for value in node.output}
    assert {node.name for node in xception.graph.nodes if node.op != "input"} <= produced
    initializers = {tensor.name for tensor in proto.graph.initializer}
    assert {"block2_sepconv1/depthwise_kernel", "block1_conv1_bn/moving_variance"} <= initializers
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["xgraph_spec"] == "xception"
    assert json.loads(props["xgraph_params"])["classes"] == 1000
    assert proto.opset_import[0].version >= 21


def test_xception_every_node_equals_the_torch_build(xception, onnx_backend) -> None:
    weights = random_weights(xception, seed=1)
    assert check_param_parity(xception, weights, [onnx_backend]).agrees
    report = check_numeric_parity(
        xception, weights, [load_backend("torch"), onnx_backend], tolerance=1e-5, batch=1
    )
    assert report.agrees, report.table()
    assert len(report.nodes) == 133


@pytest.mark.parametrize("spec", [TINY, TINY_RESNET], ids=lambda p: p.stem)
def test_every_node_equals_the_keras_build(spec: Path, onnx_backend) -> None:
    analysed = load(spec)
    report = check_numeric_parity(
        analysed,
        random_weights(analysed, seed=2),
        [load_backend("keras"), onnx_backend],
        tolerance=1e-5,
    )
    assert report.agrees, report.table()


def test_nhwc_layout_and_dynamic_batch(onnx_backend) -> None:
    from xgraph_onnx.backend import OnnxBackend

    analysed = load(TINY_RESNET)
    weights = random_weights(analysed, seed=3)
    nchw = onnx_backend.build(analysed, weights)
    nhwc = OnnxBackend(layout="nhwc").build(analysed, weights)
    (image,) = nhwc.proto.graph.input
    assert [d.dim_param or d.dim_value for d in image.type.tensor_type.shape.dim] == [
        "batch",
        32,
        32,
        3,
    ]
    for batch in (1, 3):
        x = np.random.default_rng(batch).normal(size=(batch, 32, 32, 3)).astype(np.float32)
        (a,) = onnx_backend.predict(nchw, [x])
        (b,) = onnx_backend.predict(nhwc, [x])
        assert a.shape == (batch, 10)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


RUN_WITHOUT_XGRAPH = """
import sys
import numpy as np
import onnxruntime
import openvino

x = np.load(sys.argv[2])
session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
np.save(sys.argv[3], session.run(None, {session.get_inputs()[0].name: x})[0])
core = openvino.Core()
compiled = core.compile_model(
    sys.argv[1], "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
)
np.save(sys.argv[4], compiled([x])[compiled.output(0)])
assert not [m for m in sys.modules if m.startswith("xgraph")]
"""


def test_the_onnx_file_runs_in_onnxruntime_and_openvino_without_xgraph(
    run_cli: CliRunner, tmp_path: Path
) -> None:
    analysed = load(TINY_RESNET)
    weights = random_weights(analysed, seed=4)
    save_file(weights, str(tmp_path / "w.safetensors"))
    path = tmp_path / "model.onnx"
    result = run_cli(
        "build",
        TINY_RESNET,
        "--backend",
        "onnx",
        "-o",
        path,
        "--weights",
        tmp_path / "w.safetensors",
    )
    assert result.code == 0, result.err
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", np.moveaxis(x, -1, 1))  # the file takes NCHW
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            RUN_WITHOUT_XGRAPH,
            path,
            tmp_path / "x.npy",
            tmp_path / "ort.npy",
            tmp_path / "ov.npy",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    keras = load_backend("keras")
    (expected,) = keras.predict(keras.build(analysed, weights), [x])
    for runtime in ("ort", "ov"):
        got = np.load(tmp_path / f"{runtime}.npy")
        error = np.abs(got - expected).max() / np.abs(expected).max()
        assert error < 1e-5, (runtime, error)


def test_cli_compares_every_pair_of_three_backends(run_cli: CliRunner) -> None:
    import jsonschema

    result = run_cli(
        "parity", TINY, "--numeric", "--backends", "keras,torch,onnx", "--tol", "1e-5", "--json"
    )
    assert result.code == 0, result.err
    reports = result.json()
    assert [tuple(r["backends"]) for r in reports] == [
        ("keras", "torch"),
        ("keras", "onnx"),
        ("torch", "onnx"),
    ]
    assert all(r["agrees"] and len(r["nodes"]) == 7 for r in reports)
    jsonschema.validate(reports, run_cli("schema", "--document", "parity-numeric").json())


MULTI = """\
xgraph: 1
name: multi
inputs:
  - {name: a, shape: [8, 8, 3]}
  - {name: b, shape: [8, 8, 3]}
nodes:
  - {name: c1, op: conv2d, filters: 4, kernel_size: 3, padding: same, inputs: a}
  - {name: c2, op: conv2d, filters: 4, kernel_size: 3, padding: same, inputs: b}
  - {name: s, op: add, inputs: [c1, c2]}
  - {name: p, op: global_avg_pool}
  - {name: d, op: dense, units: 5}
outputs: [a, c1, s, d]
"""


def test_nhwc_with_several_inputs_and_outputs_that_feed_other_nodes(onnx_backend) -> None:
    """An image output that other nodes read, and an input that is also an output: both
    layouts give the keras build's values at every output."""
    from xgraph_onnx.backend import OnnxBackend

    from xgraph.api import loads

    analysed = loads(MULTI)
    weights = random_weights(analysed, seed=5)
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(2, 8, 8, 3)).astype(np.float32) for _ in range(2)]
    keras = load_backend("keras")
    expected = keras.predict(keras.build(analysed, weights), xs)
    for backend in (onnx_backend, OnnxBackend(layout="nhwc")):
        got = backend.predict(backend.build(analysed, weights), xs)
        for name, a, b in zip(analysed.graph.outputs, got, expected, strict=True):
            assert a.shape == b.shape, (backend.layout, name)
            np.testing.assert_allclose(
                a, b, rtol=1e-5, atol=1e-6, err_msg=f"{backend.layout} {name}"
            )
