"""The state of one ONNX file's reading for `xgraph import`, which the op readers
(xgraph_onnx.import_ops, import_arithmetic, import_shapes) add to: the spec nodes so far,
the spec node and the layout of each ONNX value, the weights, what cannot be read."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from xgraph.importing.model import ImportedNode, ImportFileError, Unsupported
from xgraph_onnx.import_file import CheckedModel

# ONNX ops xgraph has no op for -> the op nearest them (a hint).
NEAREST = {"LeakyRelu": "prelu", "ConvTranspose": "conv2d", "Resize": "zero_pad2d"}


def node_name(text: str, op_type: str, index: int, taken: set[str]) -> str:
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


class Reader:
    """One file's reading (module doc)."""

    def __init__(self, path: Path, checked: CheckedModel) -> None:
        self.path = path
        self.checked = checked
        self.graph = checked.model.graph
        self.constants = checked.constants  # Constant nodes included: folded by load_checked
        self.shapes: dict[str, list[int]] = {}
        for value in [*self.graph.input, *self.graph.value_info, *self.graph.output]:
            dims = value.type.tensor_type.shape.dim
            self.shapes[value.name] = [d.dim_value if d.dim_value > 0 else -1 for d in dims]
        self.value_node: dict[str, str] = {}  # ONNX value -> spec node
        self.channels_last: set[str] = set()  # rank-4 ONNX values in NHWC order
        self.nodes: list[ImportedNode] = []
        self.weights: dict[str, np.ndarray] = {}
        self.unsupported: list[Unsupported] = []
        self.taken: set[str] = set()
        self.renames: dict[str, str] = {}  # spec node -> the name of the Transpose after it
        self.onnx_names: dict[str, str] = {}  # spec node -> the ONNX node it was read from
        self.uses: dict[str, int] = {}  # ONNX value -> how many nodes read it
        for node in self.graph.node:
            for value in node.input:
                self.uses[value] = self.uses.get(value, 0) + 1
        for value in self.graph.output:
            self.uses[value.name] = self.uses.get(value.name, 0) + 1

    def attrs(self, node: Any) -> dict[str, Any]:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def source(self, value: str, node: Any) -> str:
        if value not in self.value_node:
            raise ImportFileError(self.path, f"node '{node.name}' reads '{value}', not a tensor")
        return self.value_node[value]

    def add(self, node: Any, index: int, op: str, attrs: dict[str, Any], inputs: list[str]) -> str:
        """A spec node for `node`, whose output keeps the layout of its first input."""
        name = node_name(node.name, node.op_type, index, self.taken)
        self.nodes.append(ImportedNode(name, op, attrs, tuple(inputs)))
        self.value_node[node.output[0]] = name
        self.onnx_names[name] = node.name
        if node.input and node.input[0] in self.channels_last:
            self.channels_last.add(node.output[0])
        return name

    def fuse(
        self, node: Any, index: int, part: str, op: str, attrs: dict[str, Any], inputs: list[str]
    ) -> str:
        """`node` and the spec node `part` it alone reads, as one spec node named after
        `node`, in `part`'s place (its weights moved to the new name)."""
        name = node_name(node.name, node.op_type, index, self.taken)
        position = next(k for k, n in enumerate(self.nodes) if n.name == part)
        self.nodes[position] = ImportedNode(name, op, attrs, tuple(inputs))
        for key in [k for k in self.weights if k.split("/")[0] == part]:
            self.weights[f"{name}/{key.split('/', 1)[1]}"] = self.weights.pop(key)
        self.value_node = {v: name if n == part else n for v, n in self.value_node.items()}
        self.value_node[node.output[0]] = name
        self.onnx_names[name] = node.name
        if node.input and node.input[0] in self.channels_last:
            self.channels_last.add(node.output[0])
        return name

    def only_reader(self, node: Any, value: str) -> ImportedNode | None:
        """The spec node of `value` where `node` is all that reads `value`: a part of the
        node that `node` completes (a Mul after its Sigmoid)."""
        if self.uses.get(value) != 1 or value not in self.value_node:
            return None
        name = self.value_node[value]
        return next((n for n in reversed(self.nodes) if n.name == name), None)

    def layout_of(self, value: str) -> str:
        """'first' or 'last' for a rank-4 value (where its channels are), else 'flat'."""
        if len(self.shapes.get(value, [])) != 4:
            return "flat"
        return "last" if value in self.channels_last else "first"

    def refuse(self, node: Any, index: int, reason: str = "") -> None:
        where = f"graph.node[{index}] '{node.name}'"
        self.unsupported.append(Unsupported(node.op_type, where, NEAREST.get(node.op_type), reason))
        self.value_node[node.output[0]] = node.output[0]
