"""ONNX ops that move, cut or reshape values, read as spec nodes: a Transpose that moves the
channels last or back first is no node, only a layout of the value (module doc of
xgraph_onnx.importer); Reshape and Flatten in (H, W, C) order, of a channels-last value or a
1x1 map; LayerNormalization of the channels; Slice of height and width (`cropping2d`);
Concat of the channels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xgraph_onnx.import_ops import OpReader, channels_first
from xgraph_onnx.import_state import node_name

if TYPE_CHECKING:
    from xgraph_onnx.import_state import Reader

TO_LAST, TO_FIRST = [0, 2, 3, 1], [0, 3, 1, 2]


def _stem(onnx_name: str) -> str:
    """The node an ONNX node is a part of, in xgraph's own files: `x/nhwc` of `x`."""
    return onnx_name.rsplit("/", 1)[0]


def read_transpose(reader: Reader, node: Any, index: int, sources: list[str], attrs: dict) -> None:
    """The channels moved last or first again: the same spec node in another layout. A
    Transpose back that is the last part of a node (`x` after `x/reshaped`) names it."""
    perm, layout = list(attrs.get("perm", [])), reader.layout_of(node.input[0])
    if (perm, layout) == (TO_LAST, "first"):
        reader.channels_last.add(node.output[0])
    elif (perm, layout) != (TO_FIRST, "last"):
        raise ValueError(f"a transpose {perm} other than of the channels, last or back")
    reader.value_node[node.output[0]] = sources[0]
    part = reader.onnx_names.get(sources[0], "")
    if perm == TO_FIRST and "/" in part and _stem(part) == _stem(node.name):
        name = node_name(node.name, node.op_type, index, set(reader.taken))
        if name not in reader.taken:
            reader.taken.add(name)
            reader.renames[sources[0]] = name


def _shape_out(reader: Reader, node: Any) -> list[int]:
    shape = reader.shapes.get(node.output[0], [])
    if not shape or any(d < 0 for d in shape[1:]):
        raise ValueError("an output shape that shape inference does not know")
    return shape


def read_reshape(reader: Reader, node: Any, index: int, sources: list[str], attrs: dict) -> None:
    """A reshape in (H, W, C) order: of a channels-last image or of features, or of a 1x1
    channels-first map (whose order is the same); an image it makes is channels-last."""
    before = reader.shapes.get(node.input[0], [])
    if reader.layout_of(node.input[0]) == "first" and before[2:] != [1, 1]:
        raise ValueError("reshaping a channels-first map (its values in (C, H, W) order)")
    target = _shape_out(reader, node)[1:]
    reader.add(node, index, "reshape", {"target_shape": target}, sources)
    reader.channels_last.discard(node.output[0])
    if len(target) == 3:
        reader.channels_last.add(node.output[0])


def read_flatten(reader: Reader, node: Any, index: int, sources: list[str], attrs: dict) -> None:
    shape = reader.shapes.get(node.input[0], [])
    if attrs.get("axis", 1) != 1:
        raise ValueError("flattening from an axis other than the batch's")
    if reader.layout_of(node.input[0]) == "first" and shape[2:] != [1, 1]:
        raise ValueError("flattening a channels-first map larger than 1x1 ((C, H, W) order)")
    reader.add(node, index, "flatten", {}, sources)
    reader.channels_last.discard(node.output[0])


def read_layer_norm(reader: Reader, node: Any, index: int, sources: list[str], attrs: dict) -> None:
    """LayerNormalization of the channels (the last axis of a channels-last image or of
    features); a scale of constant ones or a shift of zeros (`.../const/ones`) is none."""
    rank = len(reader.shapes.get(node.input[0], []))
    if reader.layout_of(node.input[0]) == "first" or attrs.get("axis", -1) % rank != rank - 1:
        raise ValueError("normalising other axes than the channels")
    scale, bias = node.input[1], node.input[2] if len(node.input) > 2 else ""
    settings = {
        "epsilon": float(attrs.get("epsilon", 1e-5)),
        "scale": not scale.endswith("/const/ones"),
        "center": bool(bias) and not bias.endswith("/const/zeros"),
    }
    name = reader.add(node, index, "layer_norm", settings, sources)
    if settings["scale"]:
        reader.weights[f"{name}/gamma"] = reader.constants[scale]
    if settings["center"]:
        reader.weights[f"{name}/beta"] = reader.constants[bias]


def read_slice(reader: Reader, node: Any, index: int, sources: list[str], attrs: dict) -> None:
    """A Slice of height and width with step 1: a `cropping2d` node."""
    channels_first(reader, node)
    starts, ends = (list(reader.constants[v]) for v in node.input[1:3])
    shape = reader.shapes[node.input[0]]
    given = len(node.input) > 3 and node.input[3]
    axes = [int(a) % 4 for a in reader.constants[node.input[3]]] if given else [0, 1, 2, 3]
    steps_given = len(node.input) > 4 and node.input[4]
    if steps_given and any(int(s) != 1 for s in reader.constants[node.input[4]]):
        raise ValueError("a slice with steps")
    cropping = [[0, 0], [0, 0]]
    for axis, start, end in zip(axes, starts, ends, strict=True):
        size = shape[axis]
        first = min(max(int(start) + (size if start < 0 else 0), 0), size)
        last = min(max(int(end) + (size if end < 0 else 0), 0), size)
        if axis in (2, 3):
            cropping[axis - 2] = [first, size - last]
        elif (first, last) != (0, size):
            raise ValueError("a slice of the batch or the channels")
    reader.add(node, index, "cropping2d", {"cropping": cropping}, sources)


def read_concat(reader: Reader, node: Any, index: int, sources: list[str], attrs: dict) -> None:
    rank, layout = len(reader.shapes.get(node.input[0], [])), reader.layout_of(node.input[0])
    channel_axis = {"first": 1, "last": 3, "flat": rank - 1}[layout]
    if any(reader.layout_of(v) != layout for v in node.input):
        raise ValueError("a concatenation of channels-first and channels-last values")
    if attrs.get("axis", 1) % max(rank, 1) != channel_axis:
        raise ValueError("concatenation along an axis other than the channels")
    reader.add(node, index, "concat", {"axis": -1}, sources)


READERS: dict[str, OpReader] = {
    "Transpose": read_transpose,
    "Reshape": read_reshape,
    "Flatten": read_flatten,
    "LayerNormalization": read_layer_norm,
    "Slice": read_slice,
    "Concat": read_concat,
}
