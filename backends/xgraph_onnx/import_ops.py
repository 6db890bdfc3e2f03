"""ONNX ops on channels-first images read as spec nodes: convolutions (plain, depthwise,
grouped), BatchNormalization, activations, pools, Pad, Gemm. Explicit paddings become `same`
where they are TensorFlow's for the input's size, else a convolution's explicit padding; a
BatchNorm folded into a convolution by the exporter stays folded (its bias). Every
reader takes (reader, ONNX node, its index, the spec nodes of its tensor inputs, its
attributes) and raises ValueError for what it cannot read."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from xgraph.importing.model import ImportedNode
from xgraph_onnx.import_state import node_name

if TYPE_CHECKING:
    from xgraph_onnx.import_state import Reader

OpReader = Callable[["Reader", Any, int, list[str], dict[str, Any]], None]

# ONNX activations -> the spec's.
ACTIVATIONS = {
    "Relu": "relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "HardSwish": "hard_swish",
    "Gelu": "gelu",
}


def same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's `same` padding of one axis: the extra pixel after."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def channels_first(reader: Reader, node: Any) -> None:
    if reader.layout_of(node.input[0]) == "last":
        raise ValueError("a channels-last value (after a Transpose)")


def padding(
    reader: Reader, node: Any, index: int, source: str, kernel: list[int], attrs: dict[str, Any]
) -> tuple[Any, str]:
    """(the `padding` attribute, the node the layer reads): `same` where the explicit pads
    are TensorFlow's; else a convolution's own explicit padding (`1`: PyTorch's one pixel
    on every side), and a zero_pad2d node before a `valid` average pool that counts its
    padding."""
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise ValueError(f"auto_pad {attrs['auto_pad']!r}")
    if not any(pads):
        return "valid", source
    shape = reader.shapes.get(node.input[0], [])
    strides = list(attrs.get("strides", [1, 1]))
    dilations = list(attrs.get("dilations", [1, 1]))
    counted = node.op_type == "AveragePool" and attrs.get("count_include_pad", 0)
    if len(shape) == 4 and -1 not in shape[2:] and not counted:
        same = [same_pads(shape[2 + a], kernel[a], strides[a], dilations[a]) for a in (0, 1)]
        if [same[0][0], same[1][0], same[0][1], same[1][1]] == pads:
            return "same", source
    explicit = [[pads[0], pads[2]], [pads[1], pads[3]]]
    if node.op_type == "Conv":
        return (pads[0] if len(set(pads)) == 1 else explicit), source
    if not counted:
        raise ValueError(f"pads {pads} that are not TensorFlow's 'same' (a pool leaves them out)")
    name = node_name(f"{node.name.rsplit('/', 1)[0]}/pad", "Pad", index, reader.taken)
    reader.nodes.append(ImportedNode(name, "zero_pad2d", {"padding": explicit}, (source,)))
    return "valid", name


def read_conv(reader: Reader, node: Any, index: int, sources: list[str], attrs: dict) -> None:
    channels_first(reader, node)
    weight = reader.constants[node.input[1]]
    given = len(node.input) > 2 and node.input[2]
    bias = reader.constants.get(node.input[2]) if given else None
    out_channels, per_group, *kernel = weight.shape
    group = int(attrs.get("group", 1))
    in_channels = per_group * group
    pad, source = padding(reader, node, index, sources[0], kernel, attrs)
    common = {
        "kernel_size": kernel,
        "strides": list(attrs.get("strides", [1, 1])),
        "dilation_rate": list(attrs.get("dilations", [1, 1])),
        "padding": pad,
        "use_bias": bias is not None,
    }
    # A grouped convolution of one channel per group is a depthwise one, unless the file
    # names its weight a plain kernel (xgraph's own ConvNeXt: Conv2D with groups).
    plain = node.input[1].endswith("/kernel")
    if group > 1 and group == in_channels and not (plain and out_channels == in_channels):
        multiplier = out_channels // in_channels
        settings = {**common, "depth_multiplier": multiplier}
        name = reader.add(node, index, "depthwise_conv2d", settings, [source])
        # output channel c * m + k reads input c: Keras's (kh, kw, C, m)
        reader.weights[f"{name}/depthwise_kernel"] = weight.reshape(
            in_channels, multiplier, *kernel
        ).transpose(2, 3, 0, 1)
    else:
        settings = {**common, "filters": out_channels, "groups": group}
        name = reader.add(node, index, "conv2d", settings, [source])
        # (O, I/g, kh, kw) -> (kh, kw, I/g, O)
        reader.weights[f"{name}/kernel"] = weight.transpose(2, 3, 1, 0)
    if bias is not None:
        reader.weights[f"{name}/bias"] = bias


def read_batch_norm(reader: Reader, node: Any, index: int, sources: list[str], attrs: dict) -> None:
    """BatchNormalization; a scale or shift that xgraph's own files write as a constant
    (`<node>/const/ones`, `<node>/const/zeros`) is a layer without it (InceptionV3's
    scale=False)."""
    channels_first(reader, node)
    scale, bias, mean, var = (reader.constants[v] for v in node.input[1:5])
    settings = {
        "epsilon": float(attrs.get("epsilon", 1e-5)),
        "momentum": float(attrs.get("momentum", 0.9)),
        "scale": node.input[1] != f"{node.name}/const/ones",
        "center": node.input[2] != f"{node.name}/const/zeros",
    }
    name = reader.add(node, index, "batch_norm", settings, sources)
    arrays = {"gamma": scale, "beta": bias, "moving_mean": mean, "moving_variance": var}
    for key, array in arrays.items():
        if (key, False) not in (("gamma", settings["scale"]), ("beta", settings["center"])):
            reader.weights[f"{name}/{key}"] = array.astype(np.float32)


def read_activation(reader: Reader, node: Any, index: int, sources: list[str], attrs: dict) -> None:
    op = node.op_type
    if op == "Gelu" and attrs.get("approximate", b"none") in (b"tanh", "tanh"):
        activation = "gelu_tanh"
    elif op == "Clip":
        low, high = (float(reader.constants[v]) if v else None for v in node.input[1:3])
        if (low, high) != (0.0, 6.0):
            raise ValueError(f"Clip to [{low}, {high}] (xgraph has relu6)")
        activation = "relu6"
    elif op == "HardSigmoid":
        if (round(attrs.get("alpha", 0.2), 6), attrs.get("beta", 0.5)) != (0.166667, 0.5):
            raise ValueError("a hard sigmoid other than relu6(x + 3) / 6")
        activation = "hard_sigmoid"
    elif op == "Softmax":
        rank, layout = len(reader.shapes.get(node.input[0], [])), reader.layout_of(node.input[0])
        channel_axis = {"first": 1, "last": 3, "flat": rank - 1}[layout]
        if attrs.get("axis", -1) % max(rank, 1) != channel_axis:
            raise ValueError("softmax over an axis other than the channels")
        activation = "softmax"
    else:
        activation = ACTIVATIONS[op]
    reader.add(node, index, "activation", {"activation": activation}, sources)


def read_pool(reader: Reader, node: Any, index: int, sources: list[str], attrs: dict) -> None:
    channels_first(reader, node)
    kernel = list(attrs["kernel_shape"])
    pad, source = padding(reader, node, index, sources[0], kernel, attrs)
    pool = "max_pool2d" if node.op_type == "MaxPool" else "avg_pool2d"
    strides = list(attrs.get("strides", [1, 1]))
    settings = {"pool_size": kernel, "strides": strides}
    reader.add(node, index, pool, {**settings, "padding": pad}, [source])


def read_global_pool(
    reader: Reader, node: Any, index: int, sources: list[str], attrs: dict
) -> None:
    channels_first(reader, node)
    pool = "global_avg_pool" if node.op_type == "GlobalAveragePool" else "global_max_pool"
    reader.add(node, index, pool, {"keepdims": True}, sources)


def read_pad(reader: Reader, node: Any, index: int, sources: list[str], attrs: dict) -> None:
    """A Pad of zeros around the image (NCHW pads: [n, c, top, left, n, c, bottom,
    right]) as a zero_pad2d node."""
    channels_first(reader, node)
    pads = [int(p) for p in reader.constants[node.input[1]]]
    given = len(node.input) > 2 and node.input[2]
    value = float(reader.constants[node.input[2]]) if given else 0.0
    mode = attrs.get("mode", b"constant")
    if mode not in (b"constant", "constant") or value != 0.0 or len(pads) != 8:
        raise ValueError("a padding other than zeros")
    if any(pads[:2] + pads[4:6]):
        raise ValueError("a padding of the batch or the channels")
    explicit = [[pads[2], pads[6]], [pads[3], pads[7]]]
    reader.add(node, index, "zero_pad2d", {"padding": explicit}, sources)


def read_gemm(reader: Reader, node: Any, index: int, sources: list[str], attrs: dict) -> None:
    if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
        raise ValueError("Gemm with alpha, beta or transA")
    weight = reader.constants[node.input[1]]
    kernel = weight.T if attrs.get("transB", 0) else weight  # -> (in, out)
    given = len(node.input) > 2 and node.input[2]
    bias = reader.constants.get(node.input[2]) if given else None
    settings = {"units": int(kernel.shape[1]), "use_bias": bias is not None}
    name = reader.add(node, index, "dense", settings, sources)
    reader.weights[f"{name}/kernel"] = np.ascontiguousarray(kernel)
    if bias is not None:
        reader.weights[f"{name}/bias"] = bias


def read_matmul(reader: Reader, node: Any, index: int, sources: list[str], attrs: dict) -> None:
    """A product with a weight matrix on the last axis: a dense layer, on features or on
    the channels of a channels-last image (its bias: the Add after it)."""
    kernel = reader.constants.get(node.input[1])
    if len(sources) != 1 or kernel is None or kernel.ndim != 2:
        raise ValueError("a matrix product other than with a weight matrix")
    if reader.layout_of(node.input[0]) == "first":
        raise ValueError("a matrix product over the width of a channels-first image")
    settings = {"units": int(kernel.shape[1]), "use_bias": False}
    name = reader.add(node, index, "dense", settings, sources)
    reader.weights[f"{name}/kernel"] = kernel


def read_identity(reader: Reader, node: Any, index: int, sources: list[str], attrs: dict) -> None:
    """An Identity is a node of its own (a linear activation: the name stays, as xgraph's
    files write a dropout or a drop-path); a Dropout, whose rate the file may not hold,
    is none."""
    if node.op_type == "Identity":
        reader.add(node, index, "activation", {"activation": "linear"}, sources)
        return
    reader.value_node[node.output[0]] = sources[0]
    if node.input[0] in reader.channels_last:
        reader.channels_last.add(node.output[0])


READERS: dict[str, OpReader] = {
    "Identity": read_identity,
    "Dropout": read_identity,
    "Conv": read_conv,
    "BatchNormalization": read_batch_norm,
    **dict.fromkeys([*ACTIVATIONS, "Clip", "HardSigmoid", "Softmax"], read_activation),
    "MaxPool": read_pool,
    "AveragePool": read_pool,
    "GlobalAveragePool": read_global_pool,
    "GlobalMaxPool": read_global_pool,
    "Pad": read_pad,
    "Gemm": read_gemm,
    "MatMul": read_matmul,
}
