"""`xgraph import` of ONNX files: a channels-first (NCHW) graph, as torch.onnx.export writes
one, read with the onnx package (nothing runs) into an ImportedModel in the spec's (H, W, C)
terms, with its weights in xgraph's canonical layouts. Explicit paddings become `same` where
they are TensorFlow's for the input's size, else a `zero_pad2d` node before a `valid` one;
BatchNorm folded into a convolution by the exporter stays folded (its bias).

Read: Conv (plain, depthwise, grouped), BatchNormalization, Relu, Clip to [0, 6], Sigmoid,
Tanh, HardSigmoid, HardSwish, Gelu, Softmax, Add, Mul, Concat, MaxPool, AveragePool,
GlobalAveragePool, GlobalMaxPool, Flatten (of a 1x1 map), Gemm, Pad (zeros), Identity and
Dropout. Anything else is listed at once, as unsupported."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import numpy as np

from xgraph.importing.model import (
    ImportedModel,
    ImportedNode,
    ImportFileError,
    Unsupported,
    unsupported_error,
)
from xgraph_onnx.import_file import load_checked, run_values
from xgraph_onnx.import_patterns import own_parts_fused

SUFFIXES = (".onnx",)

# ONNX activations (op type, attributes checked by `_activation`) -> the spec's.
_ACTIVATIONS = {
    "Relu": "relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "HardSwish": "hard_swish",
    "Gelu": "gelu",
}
NEAREST = {"LeakyRelu": "prelu", "ConvTranspose": "conv2d", "Resize": "zero_pad2d"}


def _name(text: str, op_type: str, index: int, taken: set[str]) -> str:
    """A spec node name from an ONNX node's: torch's `/layer1/conv1/Conv` is
    `layer1_conv1`; an unnamed node its op and position."""
    parts = text.strip("/").split("/")
    if len(parts) > 1 and parts[-1].split("_")[0] == op_type:
        parts = parts[:-1]
    name = re.sub(r"[^0-9A-Za-z_]", "_", "_".join(parts)).strip("_")
    if not name or not name[0].isalpha():
        name = f"{op_type.lower()}_{index}" if not name else f"n_{name}"
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's `same` padding of one axis: the extra pixel after."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


class _Reader:
    def __init__(self, path: Path, model: Any) -> None:
        from onnx import numpy_helper

        self.path = path
        self.graph = model.graph
        self.constants = {t.name: numpy_helper.to_array(t) for t in self.graph.initializer}
        for node in self.graph.node:
            if node.op_type == "Constant":
                for attribute in node.attribute:
                    if attribute.name == "value":
                        self.constants[node.output[0]] = numpy_helper.to_array(attribute.t)
        self.shapes: dict[str, list[int]] = {}
        for value in [*self.graph.input, *self.graph.value_info, *self.graph.output]:
            dims = value.type.tensor_type.shape.dim
            self.shapes[value.name] = [d.dim_value if d.dim_value > 0 else -1 for d in dims]
        self.value_node: dict[str, str] = {}  # ONNX value -> spec node
        self.nodes: list[ImportedNode] = []
        self.weights: dict[str, np.ndarray] = {}
        self.unsupported: list[Unsupported] = []
        self.taken: set[str] = set()

    def attrs(self, node: Any) -> dict[str, Any]:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def read(self) -> ImportedModel:
        inputs = [v for v in self.graph.input if v.name not in self.constants]
        for value in inputs:
            shape = self.shapes[value.name]
            if len(shape) != 4 or -1 in shape[1:]:
                raise ImportFileError(self.path, f"input '{value.name}' is not a fixed NCHW image")
            name = _name(value.name, "input", 0, self.taken)
            self.nodes.append(ImportedNode(name, "input", {"shape": [*shape[2:], shape[1]]}, ()))
            self.value_node[value.name] = name
        for index, node in enumerate(self.graph.node):
            if node.op_type == "Constant":
                continue
            self.node(node, index)
        if self.unsupported:
            raise unsupported_error(self.path, self.unsupported)
        self.fuse_own_parts()
        outputs = tuple(self.value_node[v.name] for v in self.graph.output)
        name = re.sub(r"[^0-9A-Za-z_]", "_", self.graph.name or self.path.stem) or "imported"
        return ImportedModel(name, tuple(self.nodes), outputs, str(self.path))

    def fuse_own_parts(self) -> None:
        self.nodes, renamed = own_parts_fused(self.nodes, self.weights)
        self.value_node = {v: renamed.get(n, n) for v, n in self.value_node.items()}

    def source(self, value: str, node: Any) -> str:
        if value not in self.value_node:
            raise ImportFileError(self.path, f"node '{node.name}' reads '{value}', not a tensor")
        return self.value_node[value]

    def add(self, node: Any, index: int, op: str, attrs: dict[str, Any], inputs: list[str]) -> str:
        name = _name(node.name, node.op_type, index, self.taken)
        self.nodes.append(ImportedNode(name, op, attrs, tuple(inputs)))
        self.value_node[node.output[0]] = name
        return name

    def refuse(self, node: Any, index: int, reason: str = "") -> None:
        where = f"graph.node[{index}] '{node.name}'"
        self.unsupported.append(Unsupported(node.op_type, where, NEAREST.get(node.op_type), reason))
        self.value_node[node.output[0]] = node.output[0]

    def padding(
        self, node: Any, index: int, source: str, kernel: list[int], attrs: dict[str, Any]
    ) -> tuple[str, str]:
        """(the `padding` attribute, the node the layer reads): `same` where the explicit
        pads are TensorFlow's, `valid` after a zero_pad2d node where they are others."""
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise ValueError(f"auto_pad {attrs['auto_pad']!r}")
        if not any(pads):
            return "valid", source
        shape = self.shapes.get(node.input[0], [])
        strides = list(attrs.get("strides", [1, 1]))
        dilations = list(attrs.get("dilations", [1, 1]))
        if len(shape) == 4 and -1 not in shape[2:]:
            same = [_same_pads(shape[2 + a], kernel[a], strides[a], dilations[a]) for a in (0, 1)]
            if [same[0][0], same[1][0], same[0][1], same[1][1]] == pads:
                return "same", source
        if node.op_type == "MaxPool":
            raise ValueError(
                f"pads {pads} that are not TensorFlow's 'same' (max pooling pads -inf)"
            )
        name = _name(f"{node.name.rsplit('/', 1)[0]}/pad", "Pad", index, self.taken)
        padding = [[pads[0], pads[2]], [pads[1], pads[3]]]
        self.nodes.append(ImportedNode(name, "zero_pad2d", {"padding": padding}, (source,)))
        return "valid", name

    def node(self, node: Any, index: int) -> None:
        op = node.op_type
        attrs = self.attrs(node)
        tensors = [v for v in node.input if v and v not in self.constants]
        sources = [self.source(v, node) for v in tensors]
        try:
            if op in ("Identity", "Dropout"):
                self.value_node[node.output[0]] = sources[0]
            elif op == "Conv":
                self.conv(node, index, sources[0], attrs)
            elif op == "BatchNormalization":
                self.batch_norm(node, index, sources, attrs)
            elif op in _ACTIVATIONS:
                if op == "Gelu" and attrs.get("approximate", b"none") in (b"tanh", "tanh"):
                    activation = "gelu_tanh"
                else:
                    activation = _ACTIVATIONS[op]
                self.add(node, index, "activation", {"activation": activation}, sources)
            elif op == "Clip":
                low, high = (float(self.constants[v]) if v else None for v in node.input[1:3])
                if (low, high) != (0.0, 6.0):
                    raise ValueError(f"Clip to [{low}, {high}] (xgraph has relu6)")
                self.add(node, index, "activation", {"activation": "relu6"}, sources)
            elif op == "HardSigmoid":
                if (round(attrs.get("alpha", 0.2), 6), attrs.get("beta", 0.5)) != (0.166667, 0.5):
                    raise ValueError("a hard sigmoid other than relu6(x + 3) / 6")
                self.add(node, index, "activation", {"activation": "hard_sigmoid"}, sources)
            elif op == "Softmax":
                rank = len(self.shapes.get(node.input[0], []))
                if attrs.get("axis", -1) not in (-1, rank - 1) or rank != 2:
                    raise ValueError("softmax over an axis other than the features")
                self.add(node, index, "activation", {"activation": "softmax"}, sources)
            elif op == "Add" and len(sources) == 1 and self.bias_of_dense(node, sources[0]):
                pass
            elif (op in ("Add", "Mul") and len(sources) == 2) or (op == "Sum" and len(sources) > 1):
                self.add(node, index, "multiply" if op == "Mul" else "add", {}, sources)
            elif op == "MatMul" and len(sources) == 1 and node.input[1] in self.constants:
                kernel = self.constants[node.input[1]]
                if kernel.ndim != 2:
                    raise ValueError("a matrix product with a weight that is not a matrix")
                name = self.add(
                    node,
                    index,
                    "dense",
                    {"units": int(kernel.shape[1]), "use_bias": False},
                    sources,
                )
                self.weights[f"{name}/kernel"] = kernel
            elif op == "Concat":
                rank = len(self.shapes.get(node.input[0], []))
                if attrs.get("axis") not in (1, 1 - rank) or rank != 4:
                    raise ValueError("concatenation along an axis other than the channels")
                self.add(node, index, "concat", {"axis": -1}, sources)
            elif op in ("MaxPool", "AveragePool"):
                self.pool(node, index, sources[0], attrs)
            elif op in ("GlobalAveragePool", "GlobalMaxPool"):
                pool = "global_avg_pool" if op == "GlobalAveragePool" else "global_max_pool"
                self.add(node, index, pool, {"keepdims": True}, sources)
            elif op == "Flatten":
                shape = self.shapes.get(node.input[0], [])
                if len(shape) == 4 and shape[2:] != [1, 1]:
                    raise ValueError("flattening a map larger than 1x1 (channels-first order)")
                self.add(node, index, "flatten", {}, sources)
            elif op == "Gemm":
                self.gemm(node, index, sources, attrs)
            elif op == "Pad":
                self.pad(node, index, sources, attrs)
            else:
                self.refuse(node, index)
        except (ValueError, KeyError, TypeError) as exc:
            self.refuse(node, index, str(exc))

    def batch_norm(self, node: Any, index: int, sources: list[str], attrs: dict[str, Any]) -> None:
        """BatchNormalization; a scale or shift that xgraph's own files write as a constant
        (`<node>/const/ones`, `<node>/const/zeros`) is a layer without it (InceptionV3's
        scale=False)."""
        scale, bias, mean, var = (self.constants[v] for v in node.input[1:5])
        stem = node.name
        settings = {
            "epsilon": float(attrs.get("epsilon", 1e-5)),
            "momentum": float(attrs.get("momentum", 0.9)),
            "scale": node.input[1] != f"{stem}/const/ones",
            "center": node.input[2] != f"{stem}/const/zeros",
        }
        name = self.add(node, index, "batch_norm", settings, sources)
        arrays = {"gamma": scale, "beta": bias, "moving_mean": mean, "moving_variance": var}
        for key, array in arrays.items():
            if (key, False) not in (("gamma", settings["scale"]), ("beta", settings["center"])):
                self.weights[f"{name}/{key}"] = array.astype(np.float32)

    def pool(self, node: Any, index: int, source: str, attrs: dict[str, Any]) -> None:
        kernel = list(attrs["kernel_shape"])
        if node.op_type == "AveragePool" and attrs.get("count_include_pad", 0):
            raise ValueError("average pooling that counts its padding")
        padding, source = self.padding(node, index, source, kernel, attrs)
        pool = "max_pool2d" if node.op_type == "MaxPool" else "avg_pool2d"
        strides = list(attrs.get("strides", [1, 1]))
        settings = {"pool_size": kernel, "strides": None if strides == kernel else strides}
        self.add(node, index, pool, {**settings, "padding": padding}, [source])

    def pad(self, node: Any, index: int, sources: list[str], attrs: dict[str, Any]) -> None:
        """A Pad of zeros around the image (NCHW pads: [n, c, top, left, n, c, bottom,
        right]) as a zero_pad2d node."""
        pads = [int(p) for p in self.constants[node.input[1]]]
        given = len(node.input) > 2 and node.input[2]
        value = float(self.constants[node.input[2]]) if given else 0.0
        mode = attrs.get("mode", b"constant")
        if mode not in (b"constant", "constant") or value != 0.0 or len(pads) != 8:
            raise ValueError("a padding other than zeros")
        if any(pads[:2] + pads[4:6]):
            raise ValueError("a padding of the batch or the channels")
        padding = [[pads[2], pads[6]], [pads[3], pads[7]]]
        self.add(node, index, "zero_pad2d", {"padding": padding}, sources)

    def bias_of_dense(self, node: Any, source: str) -> bool:
        """`MatMul` then `Add` of a vector: the dense layer's bias (it takes the Add's
        output and name, as xgraph's own files name a dense layer's parts)."""
        last = self.nodes[-1] if self.nodes else None
        bias = next((self.constants[v] for v in node.input if v in self.constants), None)
        if last is None or last.name != source or last.op != "dense" or last.attrs["use_bias"]:
            return False
        if bias is None or bias.shape != (last.attrs["units"],):
            return False
        name = _name(node.name, node.op_type, 0, self.taken)
        kernel = self.weights.pop(f"{last.name}/kernel")
        self.nodes[-1] = ImportedNode(name, "dense", {**last.attrs, "use_bias": True}, last.inputs)
        self.weights[f"{name}/kernel"] = kernel
        self.weights[f"{name}/bias"] = bias
        self.value_node[node.output[0]] = name
        return True

    def conv(self, node: Any, index: int, source: str, attrs: dict[str, Any]) -> None:
        weight = self.constants[node.input[1]]
        bias = self.constants.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        out_channels, per_group, *kernel = weight.shape
        group = int(attrs.get("group", 1))
        in_channels = per_group * group
        padding, source = self.padding(node, index, source, kernel, attrs)
        common = {
            "kernel_size": kernel,
            "strides": list(attrs.get("strides", [1, 1])),
            "dilation_rate": list(attrs.get("dilations", [1, 1])),
            "padding": padding,
            "use_bias": bias is not None,
        }
        kernel_hwio = weight.transpose(2, 3, 1, 0)  # (O, I/g, kh, kw) -> (kh, kw, I/g, O)
        if group > 1 and group == in_channels:
            multiplier = out_channels // in_channels
            name = self.add(
                node,
                index,
                "depthwise_conv2d",
                {**common, "depth_multiplier": multiplier},
                [source],
            )
            # output channel c * m + k reads input c: Keras's (kh, kw, C, m)
            self.weights[f"{name}/depthwise_kernel"] = weight.reshape(
                in_channels, multiplier, *kernel
            ).transpose(2, 3, 0, 1)
        else:
            attrs_ = {**common, "filters": out_channels, "groups": group}
            name = self.add(node, index, "conv2d", attrs_, [source])
            self.weights[f"{name}/kernel"] = kernel_hwio
        if bias is not None:
            self.weights[f"{name}/bias"] = bias

    def gemm(self, node: Any, index: int, sources: list[str], attrs: dict[str, Any]) -> None:
        if (
            attrs.get("alpha", 1.0) != 1.0
            or attrs.get("beta", 1.0) != 1.0
            or attrs.get("transA", 0)
        ):
            raise ValueError("Gemm with alpha, beta or transA")
        weight = self.constants[node.input[1]]
        kernel = weight.T if attrs.get("transB", 0) else weight  # -> (in, out)
        bias = self.constants.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        attrs_ = {"units": int(kernel.shape[1]), "use_bias": bias is not None}
        name = self.add(node, index, "dense", attrs_, sources)
        self.weights[f"{name}/kernel"] = np.ascontiguousarray(kernel)
        if bias is not None:
            self.weights[f"{name}/bias"] = bias


def _read(path: Path) -> tuple[Any, _Reader, ImportedModel]:
    """The checked file, its reader and the model read, once per file's version: `import`
    reads the model, then its weights, then (`--check`) runs it."""
    stat = path.stat()
    return _read_version(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _read_version(path: str, mtime_ns: int, size: int) -> tuple[Any, _Reader, ImportedModel]:
    model = load_checked(Path(path))
    reader = _Reader(Path(path), model)
    return model, reader, reader.read()


def read_model(path: Path, config: Path | None = None) -> ImportedModel:
    if config is not None:
        raise ImportFileError(config, "an ONNX file holds its graph: --config is for Keras files")
    return _read(path)[2]


def weights_for(path: Path, config: Path | None, analysed: Any) -> dict[str, np.ndarray]:
    """The file's weights, in xgraph's canonical layouts, keyed as the imported spec's."""
    reader = _read(path)[1]
    return {
        key: np.ascontiguousarray(value, dtype=np.float32) for key, value in reader.weights.items()
    }


def source_outputs(
    path: Path, config: Path | None, names: list[str], inputs: list[Any]
) -> dict[str, Any]:
    """The ONNX file run by ONNX Runtime, every value that is a node of the spec exposed as
    an output, in the spec's channels-last terms."""
    checked, reader, _ = _read(path)
    wanted = {node: value for value, node in reader.value_node.items() if node in names}
    images = [v.name for v in checked.graph.input if v.name not in reader.constants]
    values = run_values(checked, images, list(wanted.values()), inputs)
    return dict(zip(wanted, values, strict=True))
