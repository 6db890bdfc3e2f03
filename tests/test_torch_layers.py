"""xgraph's torch layers: written once, for the build and for generated code; TensorFlow's
'same' padding worked out from the input's size, so a built module runs at any input size;
and source text that stands alone, to be copied into a generated module."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xgraph.api import loads
from xgraph.backend import load_backend
from xgraph.ops.windows import same_padding
from xgraph.weights.initial import random_weights
from xgraph_torch import layers
from xgraph_torch.layer_source import layer_names, layer_source


def _spec(node: str, size: int) -> str:
    return f"""
xgraph: 1
name: one
inputs: [{{name: x, shape: [{size}, {size + 1}, 3]}}]
nodes:
  - {{name: out, {node}}}
"""


STRIDED_SAME = [
    "op: conv2d, filters: 4, kernel_size: 3, strides: 2, padding: same",
    "op: separable_conv2d, filters: 4, kernel_size: 3, strides: 2, padding: same",
    "op: depthwise_conv2d, kernel_size: 2, strides: 2, padding: same",
    "op: max_pool2d, pool_size: 3, strides: 2, padding: same",
    "op: avg_pool2d, pool_size: 3, strides: 2, padding: same",
]


@pytest.mark.parametrize("node", STRIDED_SAME)
def test_a_module_built_for_one_size_runs_at_any_size(node: str) -> None:
    """Built at 9x10, run at 8x9 and 12x13: the numbers of a build made for that size."""
    backend = load_backend("torch")
    built = loads(_spec(node, 9))
    weights = random_weights(built, seed=1)
    model = backend.build(built, weights)
    for size in (8, 12):
        other = loads(_spec(node, size))
        x = np.random.default_rng(size).random((2, size, size + 1, 3), dtype=np.float32)
        (expected,) = backend.predict(backend.build(other, weights), [x])
        (got,) = backend.predict(model, [x])
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("node", "padding", "pad"),
    [
        ("op: conv2d, filters: 4, kernel_size: 3, padding: same", (1, 1), None),
        ("op: conv2d, filters: 4, kernel_size: 2, padding: same", (0, 0), (0, 1, 0, 1)),
        ("op: conv2d, filters: 4, kernel_size: 1, strides: 2, padding: same", (0, 0), None),
        ("op: max_pool2d, pool_size: 3, strides: 2, padding: same", (0, 0), "same"),
        ("op: max_pool2d, pool_size: 3, strides: 2", (0, 0), None),
    ],
)
def test_same_padding_is_baked_where_every_size_pads_alike(node, padding, pad) -> None:
    """Stride 1 (or a 1x1 window) pads every size alike: plain torch padding where it is
    symmetric, fixed amounts where not; otherwise the amounts come from the input."""
    analysed = loads(_spec(node, 9))
    call = load_backend("torch").lower(analysed, analysed.graph["out"])
    assert call.kwargs["padding"] == padding
    assert call.kwargs.get("pad") == pad


@pytest.mark.parametrize("size", range(4, 12))
@pytest.mark.parametrize(("kernel", "stride", "dilation"), [(3, 2, 1), (2, 2, 1), (5, 3, 2)])
def test_same_pad_amounts_are_the_spec_windows(size, kernel, stride, dilation) -> None:
    (top, bottom), (left, right) = (
        same_padding(size, kernel, stride, dilation),
        same_padding(size + 1, kernel, stride, dilation),
    )
    amounts = layers.same_pad_amounts(
        (size, size + 1), (kernel, kernel), (stride, stride), (dilation, dilation)
    )
    assert amounts == (left, right, top, bottom)


def test_same_padding_exports_with_a_dynamic_batch() -> None:
    model = nn.Sequential(
        layers.Conv2d(3, 4, 3, stride=2, pad="same"),
        layers.MaxPool2d(3, 2, pad="same"),
        layers.AvgPool2d(3, 2, pad="same"),
    ).eval()
    x = torch.rand(2, 3, 17, 18)
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(model, (x,), dynamic_shapes=({0: batch},)).module()
    y = torch.rand(5, 3, 17, 18)
    torch.testing.assert_close(program(y), model(y))


def test_an_unknown_pad_is_refused() -> None:
    with pytest.raises(ValueError, match="pad must be 'same'"):
        layers.Conv2d(3, 4, 3, pad="valid")


def test_batch_norm_is_a_public_module_with_batch_norm_keys() -> None:
    norm = layers.BatchNorm(4, eps=1e-3, momentum=0.01)
    assert not isinstance(norm, nn.modules.batchnorm._BatchNorm)
    assert norm.state_dict().keys() == nn.BatchNorm2d(4).state_dict().keys()
    assert "weight" not in layers.BatchNorm(4, scale=False).state_dict()


def test_batch_norm_follows_the_biased_variance_in_training() -> None:
    norm = layers.BatchNorm(3, eps=1e-3, momentum=0.5).train()
    x = torch.rand(4, 3, 5, 5)
    y = norm(x)
    variance = x.var(dim=(0, 2, 3), unbiased=False)
    torch.testing.assert_close(norm.running_var, 0.5 + 0.5 * variance)
    torch.testing.assert_close(norm.running_mean, 0.5 * x.mean(dim=(0, 2, 3)))
    expected = F.batch_norm(x, None, None, training=True, eps=1e-3)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
    assert int(norm.num_batches_tracked) == 1


def _standalone(names: list[str]) -> dict[str, object]:
    """The layers' source run alone, with only the imports a generated module has."""
    source = layer_source(names)
    assert "xgraph" not in source
    assert "import" not in source
    namespace: dict[str, object] = {"torch": torch, "nn": nn, "F": F}
    exec(compile(source, "<layers>", "exec"), namespace)
    return namespace


def test_layer_source_stands_alone_and_computes_what_the_build_does() -> None:
    namespace = _standalone(["SeparableConv2d", "MaxPool2d", "AvgPool2d", "BatchNorm"])
    x = torch.rand(2, 3, 9, 10)
    for name, args in [
        ("SeparableConv2d", dict(in_channels=3, out_channels=4, kernel_size=3, stride=2)),
        ("MaxPool2d", dict(kernel_size=3, stride=2)),
        ("AvgPool2d", dict(kernel_size=3, stride=2)),
        ("BatchNorm", dict(num_features=3)),
    ]:
        pad = {} if name == "BatchNorm" else {"pad": "same"}
        copied = namespace[name](**args, **pad).eval()  # type: ignore[operator]
        built = getattr(layers, name)(**args, **pad).eval()
        assert copied.state_dict().keys() == built.state_dict().keys(), name
        copied.load_state_dict(built.state_dict())
        torch.testing.assert_close(copied(x), built(x))


def test_layer_source_gives_what_each_class_uses_once_in_order() -> None:
    source = layer_source(["SeparableConv2d", "Conv2d"])
    order = [source.index(f"class {c}(") for c in ("Conv2d", "SeparableConv2d")]
    assert order == sorted(order)
    assert source.count("class Conv2d(") == 1
    assert source.index("def same_pad_amounts(") < source.index("def pad_input(")
    assert "class MaxPool2d" not in source
    with pytest.raises(KeyError, match="Nothing"):
        layer_source(["Nothing"])


def test_layer_source_covers_every_layer_class() -> None:
    classes = {
        n
        for n, v in vars(layers).items()
        if isinstance(v, type) and v.__module__ == layers.__name__
    }
    assert classes <= set(layer_names())
    _standalone(sorted(classes))


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
def test_same_padding_exports_to_onnx_through_the_tracer(tmp_path) -> None:
    """benchmarks/ exports the torch build with torch.onnx.export (the tracer), whose integer
    division truncates: the amounts must stay right there too."""
    ort = pytest.importorskip("onnxruntime")
    model = nn.Sequential(
        layers.Conv2d(3, 4, 3, stride=2, pad="same"),
        layers.MaxPool2d(3, 2, pad="same"),
        layers.AvgPool2d(3, 2, pad="same"),
    ).eval()
    path = tmp_path / "same.onnx"
    torch.onnx.export(
        model,
        (torch.zeros(1, 3, 17, 18),),
        str(path),
        dynamo=False,
        input_names=["x"],
        dynamic_axes={"x": {0: "batch"}},
    )
    x = torch.rand(3, 3, 17, 18)
    (got,) = ort.InferenceSession(str(path)).run(None, {"x": x.numpy()})
    with torch.inference_mode():
        np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-5, atol=1e-6)
