"""OnnxBackend: an ONNX model emitted from the analysed graph with the `onnx` package, run
with ONNX Runtime; weights, counts, inference and saving.

Layout: inside the model tensors are NCHW, as ONNX's operators want; the model's inputs and
image outputs are NCHW too by default, as most ONNX models and serving stacks expect, or
NHWC, the spec's own layout, with `OnnxBackend(layout="nhwc")`. Value names
are node names, initializers are named as the canonical weights (`<node>/<param>`), and the
spec's name and parameter values are in the model's metadata.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from xgraph import __version__
from xgraph.backend.rules import placed_weights, require_rules
from xgraph.errors import SpecError
from xgraph.files import write_atomically
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.threads import session_threads
from xgraph.weights.initial import Weights, initial_weights, weight_key
from xgraph.weights.slots import PlacedWeight
from xgraph_onnx.rules import OnnxRule
from xgraph_onnx.rules.base import Lowered, onnx_rules

OPSET = 21
IR_VERSION = 10  # the IR of opset 21, read by ONNX Runtime 1.2x and OpenVINO


@dataclass
class OnnxModel:
    """A built ONNX model, with an ONNX Runtime session made on first use."""

    proto: onnx.ModelProto
    layout: str
    input_ranks: list[int] = field(default_factory=list)

    @cached_property
    def session(self) -> Any:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = session_threads()
        return onnxruntime.InferenceSession(
            self.proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )


def _constant(name: str, value: Any) -> onnx.TensorProto:
    """Floats as float32 (scalars or vectors), ints as int64 (pads, shapes)."""
    array = np.asarray(value)
    dtype = np.int64 if array.dtype.kind in "iu" else np.float32
    return numpy_helper.from_array(array.astype(dtype), name)


def _nchw_shape(shape: Sequence[int]) -> list[int]:
    return [shape[-1], *shape[:-1]] if len(shape) > 1 else list(shape)


class OnnxBackend:
    name = "onnx"
    file_suffix = ".onnx"
    # NCHW by default: what ONNX models (and torch exports) take, and what every runtime's
    # convolutions expect without a transpose; NHWC keeps the spec's layout at the interface.
    options: Mapping[str, tuple[str, ...]] = {"layout": ("nchw", "nhwc")}

    def __init__(self, layout: str = "nchw") -> None:
        if layout not in ("nchw", "nhwc"):
            raise SpecError(f"the onnx layout is 'nchw' or 'nhwc', not '{layout}'")
        self.layout = layout
        self.rules: Mapping[str, OnnxRule] = onnx_rules()

    def lower(self, analysed: AnalysedGraph, node: Node) -> Lowered:
        return self.rules[node.op].lower(analysed, node, node.inputs)

    def placed_weights(self, analysed: AnalysedGraph, node: Node) -> list[PlacedWeight]:
        """Each parameter of the node with its slot: its initializer is `<node>/<param>`."""
        return placed_weights(analysed, node, self.name)

    def _io(self, name: str, shape: Sequence[int]) -> onnx.ValueInfoProto:
        dims = _nchw_shape(shape) if self.layout == "nchw" else list(shape)
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", *dims])

    def to_proto(self, analysed: AnalysedGraph, weights: Weights) -> onnx.ModelProto:
        """The whole model: graph inputs and outputs (with a transpose at each image edge
        when the model is NHWC), every node's ONNX nodes, weights and constants."""
        graph = analysed.graph
        nodes: list[onnx.NodeProto] = []
        initializers: list[onnx.TensorProto] = []
        renamed: dict[str, str] = {}  # NHWC edges (inputs, outputs) -> their NCHW values inside
        inputs = []
        for name in graph.inputs:
            shape = analysed.shapes[name]
            inputs.append(self._io(name, shape))
            if self.layout == "nhwc" and len(shape) > 1:
                renamed[name] = f"{name}/nchw"
                perm = [0, len(shape), *range(1, len(shape))]
                nodes.append(helper.make_node("Transpose", [name], [renamed[name]], perm=perm))
        for name in graph.outputs:  # computed NCHW inside, made NHWC on the way out
            if self._transposed(analysed, name) and name not in graph.inputs:
                renamed[name] = f"{name}/nchw"
        for node in graph.nodes:
            lowered = self.lower(analysed, node)
            for step in lowered.nodes:
                sources = [renamed.get(value, value) for value in step.inputs]
                targets = [renamed.get(value, value) for value in step.outputs]
                nodes.append(
                    helper.make_node(
                        step.op_type, sources, targets, name=step.outputs[-1], **step.attrs
                    )
                )
            initializers += [_constant(name, value) for name, value in lowered.constants.items()]
            for placed in self.placed_weights(analysed, node):
                value = placed.to_framework(np.asarray(weights[placed.key], dtype=np.float32))
                initializers.append(numpy_helper.from_array(np.array(value, order="C"), placed.key))
        outputs = []
        for name in graph.outputs:
            shape = analysed.shapes[name]
            if self._transposed(analysed, name) and name not in graph.inputs:
                perm = [0, *range(2, len(shape) + 1), 1]
                nodes.append(helper.make_node("Transpose", [f"{name}/nchw"], [name], perm=perm))
            outputs.append(self._io(name, shape))
        onnx_graph = helper.make_graph(nodes, graph.name, inputs, outputs, initializers)
        model = helper.make_model(
            onnx_graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="xgraph",
            producer_version=__version__,
        )
        model.ir_version = IR_VERSION
        helper.set_model_props(
            model,
            {
                "xgraph_spec": analysed.name,
                "xgraph_params": json.dumps(analysed.params, sort_keys=True),
                "xgraph_layout": self.layout,
            },
        )
        return model

    def _transposed(self, analysed: AnalysedGraph, name: str) -> bool:
        """Whether an output leaves the model through a transpose to NHWC."""
        return self.layout == "nhwc" and len(analysed.shapes[name]) > 1

    def build(self, analysed: AnalysedGraph, weights: Weights | None = None) -> OnnxModel:
        require_rules(analysed, self.name)
        weights = weights if weights is not None else initial_weights(analysed)
        proto = self.to_proto(analysed, weights)
        onnx.checker.check_model(proto, full_check=True)
        return OnnxModel(proto, self.layout, [len(s) for s in analysed.input_shapes()])

    def get_weights(self, model: OnnxModel, analysed: AnalysedGraph) -> Weights:
        stored = {t.name: numpy_helper.to_array(t) for t in model.proto.graph.initializer}
        weights = {}
        for node in analysed.graph.nodes:
            for placed in self.placed_weights(analysed, node):
                weights[placed.key] = np.array(placed.from_framework(stored[placed.key]), order="C")
        return weights

    def set_weights(self, model: OnnxModel, analysed: AnalysedGraph, weights: Weights) -> None:
        fresh = self.to_proto(analysed, weights)
        model.proto = fresh
        model.__dict__.pop("session", None)

    def node_param_counts(
        self, model: OnnxModel, analysed: AnalysedGraph
    ) -> dict[str, tuple[int, int]]:
        """Read off the model's initializers named `<node>/<param>`; which of them are
        statistics (not trained) is the op's own fact, from its parameter list."""
        trainable = {
            weight_key(node.name, p.name): p.trainable
            for node in analysed.graph.nodes
            for p in analysed.counts[node.name].params
        }
        counts = {node.name: [0, 0] for node in analysed.graph.nodes}
        for tensor in model.proto.graph.initializer:
            node, _, param = tensor.name.partition("/")
            if node in counts and "/" not in param and tensor.name in trainable:
                size = int(np.prod(tensor.dims)) if tensor.dims else 1
                counts[node][0 if trainable[tensor.name] else 1] += size
            elif node in counts and "/" not in param:  # a weight the analysis does not know
                size = int(np.prod(tensor.dims)) if tensor.dims else 1
                counts[node][0] += size
        return {name: (t, n) for name, (t, n) in counts.items()}

    def predict(self, model: OnnxModel, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Channels-last numpy in and out, whatever the model's own layout."""
        session = model.session
        feed = {}
        for info, array in zip(session.get_inputs(), inputs, strict=True):
            value = np.asarray(array, dtype=np.float32)
            if model.layout == "nchw" and value.ndim > 2:
                value = np.moveaxis(value, -1, 1)
            feed[info.name] = np.ascontiguousarray(value)
        outputs = session.run(None, feed)
        if model.layout == "nchw":
            outputs = [np.moveaxis(o, 1, -1) if o.ndim > 2 else o for o in outputs]
        return [np.asarray(o) for o in outputs]

    def load(self, path: Path) -> OnnxModel:
        """An .onnx file as `predict` takes it (`xgraph predict`), in the layout its
        metadata names (NCHW when it names none)."""
        proto = onnx.load(str(path))
        props = {prop.key: prop.value for prop in proto.metadata_props}
        ranks = [len(value.type.tensor_type.shape.dim) - 1 for value in proto.graph.input]
        return OnnxModel(proto, props.get("xgraph_layout", "nchw"), ranks)

    def save(self, model: OnnxModel, analysed: AnalysedGraph, path: Path) -> None:
        if path.suffix != ".onnx":
            raise SpecError(f"the onnx backend writes ONNX files: name it '{path.stem}.onnx'")
        write_atomically(path, model.proto.SerializeToString())
