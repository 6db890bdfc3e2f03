"""Element-wise ONNX ops read as spec nodes (an Add of a vector after a MatMul: the dense
layer's bias). Of two tensors: `add` and `multiply` (a Mul of
a value and its own Sigmoid: `swish`; a Mul by a number then an Add: `scaled_add`). Of a
tensor and a constant (a number, or one per channel): a Mul and an Add are a `rescaling`
(a Mul by a weight per channel, a `layer_scale`), a Sub and a Div a `normalization`, whose
divisor max(sqrt(variance), epsilon) is read back as its variance; one following the other
they are one node, as Keras's layers are."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from xgraph.importing.model import ImportedNode
from xgraph_onnx.import_ops import OpReader

if TYPE_CHECKING:
    from xgraph_onnx.import_state import Reader

Number = float | tuple[float, ...]


def per_channel(reader: Reader, value: str, array: np.ndarray) -> Number:
    """A constant broadcast against `value`: a number, or one number per channel (the
    channel axis of the value's layout); anything else is a ValueError."""
    if array.size == 1:
        return float(array.reshape(()))
    shape = reader.shapes.get(value, [])
    rank = len(shape)
    axis = 1 if reader.layout_of(value) == "first" else rank - 1
    padded = [1] * (rank - array.ndim) + list(array.shape)
    if array.ndim > rank or padded[axis] != shape[axis] or array.size != shape[axis]:
        raise ValueError(f"a constant of shape {array.shape} that is not one value per channel")
    return tuple(float(v) for v in array.reshape(-1))


def _operands(reader: Reader, node: Any) -> tuple[str, np.ndarray]:
    """(the tensor, the constant) of a binary op that reads one of each."""
    values = list(node.input)
    constants = [v for v in values if v in reader.constants]
    if len(values) != 2 or len(constants) != 1:
        raise ValueError("an element-wise op of other than two tensors or a tensor and a constant")
    return next(v for v in values if v not in reader.constants), reader.constants[constants[0]]


def _channels(reader: Reader, value: str) -> int:
    shape = reader.shapes[value]
    return shape[1] if reader.layout_of(value) == "first" else shape[-1]


def _each(number: Number, channels: int) -> tuple[float, ...]:
    return number if isinstance(number, tuple) else (number,) * channels


def _first_half(node: ImportedNode | None, op: str) -> ImportedNode | None:
    """`node` where it is a rescaling without an offset (op 'rescaling') or a normalization
    by a unit variance (op 'normalization'): the first half of a Keras layer."""
    if node is None or node.op != op:
        return None
    if op == "rescaling":
        return node if node.attrs.get("offset", 0.0) == 0.0 else None
    return node if set(node.attrs.get("variance") or (0.0,)) == {1.0} else None


def read_add(reader: Reader, node: Any, index: int, sources: list[str], attrs: dict) -> None:
    if len(sources) == 2:
        scaled = _first_half(reader.only_reader(node, node.input[1]), "rescaling")
        if scaled is not None and isinstance(scaled.attrs["scale"], float):
            settings = {"scale": scaled.attrs["scale"]}
            inputs = [sources[0], *scaled.inputs]
            reader.fuse(node, index, sources[1], "scaled_add", settings, inputs)
        else:
            reader.add(node, index, "add", {}, sources)
        return
    tensor, offset = _operands(reader, node)
    if _bias_of_dense(reader, node, index, tensor, offset):
        return
    number = per_channel(reader, tensor, offset)
    scaled = _first_half(reader.only_reader(node, tensor), "rescaling")
    if scaled is not None:
        rescaled: dict[str, Any] = {"scale": scaled.attrs["scale"], "offset": number}
        reader.fuse(node, index, sources[0], "rescaling", rescaled, list(scaled.inputs))
    else:
        reader.add(node, index, "rescaling", {"scale": 1.0, "offset": number}, sources)


def _bias_of_dense(reader: Reader, node: Any, index: int, tensor: str, bias: np.ndarray) -> bool:
    """`MatMul` then `Add` of a vector: the dense layer's bias (the layer takes the Add's
    name, as xgraph's own files name a dense layer's parts)."""
    dense = reader.only_reader(node, tensor)
    if dense is None or dense.op != "dense" or dense.attrs["use_bias"]:
        return False
    if bias.shape != (dense.attrs["units"],):
        return False
    settings = {**dense.attrs, "use_bias": True}
    name = reader.fuse(node, index, dense.name, "dense", settings, list(dense.inputs))
    reader.weights[f"{name}/bias"] = bias
    return True


def read_sum(reader: Reader, node: Any, index: int, sources: list[str], attrs: dict) -> None:
    if len(sources) != len(node.input):
        raise ValueError("a Sum with a constant")
    reader.add(node, index, "add", {}, sources)


def read_mul(reader: Reader, node: Any, index: int, sources: list[str], attrs: dict) -> None:
    if len(sources) == 2:
        for position in (0, 1):
            gate = reader.only_reader(node, node.input[position])
            other = sources[1 - position]
            if (
                gate is not None
                and (gate.op, gate.inputs) == ("activation", (other,))
                and gate.attrs["activation"] == "sigmoid"
            ):
                settings = {"activation": "swish"}
                reader.fuse(node, index, gate.name, "activation", settings, [other])
                return
        reader.add(node, index, "multiply", {}, sources)
        return
    tensor, array = _operands(reader, node)
    number = per_channel(reader, tensor, array)
    constant = next(v for v in node.input if v in reader.constants)
    if isinstance(number, tuple) and "/const/" not in constant:  # a weight: LayerScale's
        name = reader.add(node, index, "layer_scale", {}, sources)
        reader.weights[f"{name}/gamma"] = np.asarray(number, np.float32)
    else:
        reader.add(node, index, "rescaling", {"scale": number}, sources)


def read_sub(reader: Reader, node: Any, index: int, sources: list[str], attrs: dict) -> None:
    tensor, mean = _operands(reader, node)
    if node.input[0] != tensor:
        raise ValueError("a constant minus a tensor")
    channels = _channels(reader, tensor)
    settings = {"mean": _each(per_channel(reader, tensor, mean), channels)}
    reader.add(node, index, "normalization", {**settings, "variance": (1.0,) * channels}, sources)


def read_div(reader: Reader, node: Any, index: int, sources: list[str], attrs: dict) -> None:
    """A division by a constant: a normalization; Keras's divisor max(sqrt(variance),
    1e-7) is traced back to the variance it was computed from where it was folded."""
    tensor, divisor = _operands(reader, node)
    if node.input[0] != tensor:
        raise ValueError("a constant divided by a tensor")
    channels = _channels(reader, tensor)
    traced = reader.checked.source_of(node.input[1], "Max", "Sqrt")
    if traced is not None:
        variance = _each(per_channel(reader, tensor, reader.constants[traced]), channels)
    else:
        variance = tuple(v * v for v in _each(per_channel(reader, tensor, divisor), channels))
    centred = _first_half(reader.only_reader(node, tensor), "normalization")
    if centred is not None:
        settings = {"mean": centred.attrs["mean"], "variance": variance}
        inputs = list(centred.inputs)
        name = reader.fuse(node, index, sources[0], "normalization", settings, inputs)
        _as_weights(reader, node, name, traced)
    else:
        settings = {"mean": (0.0,) * channels, "variance": variance}
        reader.add(node, index, "normalization", settings, sources)


def _as_weights(reader: Reader, node: Any, name: str, variance: str | None) -> None:
    """A normalization whose mean and variance are weights of the file (xgraph's own
    EfficientNet: `<node>/mean`, reshaped for NCHW) keeps them as weights, with the count."""
    sub = next((n for n in reader.graph.node if n.output[0] == node.input[0]), None)
    mean = reader.checked.source_of(sub.input[1], "Reshape") if sub is not None else None
    variance = reader.checked.source_of(variance, "Reshape") if variance is not None else None
    if mean is None or variance is None or "/const/" in mean + variance:
        return
    position = next(k for k, n in enumerate(reader.nodes) if n.name == name)
    reader.nodes[position] = ImportedNode(name, "normalization", {}, reader.nodes[position].inputs)
    count = reader.constants.get(f"{mean.rsplit('/', 1)[0]}/count", np.zeros((), np.float32))
    reader.weights[f"{name}/mean"] = reader.constants[mean]
    reader.weights[f"{name}/variance"] = reader.constants[variance]
    reader.weights[f"{name}/count"] = np.asarray(count).reshape(())


READERS: dict[str, OpReader] = {
    "Add": read_add,
    "Sum": read_sum,
    "Mul": read_mul,
    "Sub": read_sub,
    "Div": read_div,
}
