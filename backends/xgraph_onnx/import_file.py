"""An ONNX file read for `xgraph import`: its external data first checked to lie inside the
model's folder, the graph checked by onnx's checker (a cycle, a dangling value), constant
subgraphs computed once, shapes inferred; and run by ONNX Runtime for `--check`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xgraph.importing.model import ImportFileError

_MOST_BYTES = 4 << 30  # an ONNX protobuf's own limit is 2 GB; external data aside


@dataclass
class CheckedModel:
    """A checked file's graph with its constant subgraphs folded (`model`), every constant
    value by name (initializers and folded results), and for each folded value the op and
    inputs that made it: a normalisation's divisor, max(sqrt(variance), epsilon), is read
    back as the variance it came from."""

    model: Any
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    origins: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)

    def source_of(self, value: str, *path: str) -> str | None:
        """The constant that `value` was computed from through the ops `path` (each the
        first input of the op before), or None where it was not."""
        for op_type in path:
            origin = self.origins.get(value)
            if origin is None or origin[0] != op_type or not origin[1]:
                return None
            value = origin[1][0]
        return value


def load_checked(path: Path) -> CheckedModel:
    """The model, its external data checked to lie inside the model's folder first."""
    import onnx
    from onnx import external_data_helper

    size = path.stat().st_size
    if size > _MOST_BYTES:
        raise ImportFileError(path, f"{size:,} bytes: more than an ONNX file holds")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # the protobuf parser's errors have no common class
        raise ImportFileError(path, f"not a readable ONNX file: {exc}") from None
    folder = path.resolve().parent
    for tensor in external_data_helper._get_all_tensors(model):
        if not external_data_helper.uses_external_data(tensor):
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        target = (folder / info.get("location", "")).resolve()
        if folder not in target.parents or not target.is_file():
            raise ImportFileError(
                path,
                f"tensor '{tensor.name}' keeps its data in '{info.get('location', '')}', "
                "outside the model's folder (or missing)",
            )
    if any(external_data_helper.uses_external_data(t) for t in model.graph.initializer):
        external_data_helper.load_external_data_for_model(model, str(folder))
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx.checker.ValidationError and its C++ kin
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImportFileError(path, f"not a valid ONNX graph: {first}") from None
    folded = _folded(model)
    folded.model = onnx.shape_inference.infer_shapes(folded.model)
    return folded


def _folded(model: Any) -> CheckedModel:
    """The graph with every node whose inputs are all constants computed once (by ONNX's
    reference implementation: numpy, the file's data only) into an initializer: torch
    exports a padding's amounts as shape arithmetic on constants."""
    import onnx
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    graph = model.graph
    known = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    origins: dict[str, tuple[str, tuple[str, ...]]] = {}
    kept = []
    for node in graph.node:
        if node.op_type != "Constant" and not all(v in known for v in node.input if v):
            kept.append(node)
            continue
        if node.op_type == "Constant" and not node.input:
            outputs = ReferenceEvaluator(_single(node, [])).run(None, {})
        else:
            inputs = [v for v in node.input if v]
            single = _single(node, inputs)
            outputs = ReferenceEvaluator(single).run(None, {v: known[v] for v in inputs})
        for name, value in zip(node.output, outputs, strict=True):
            known[name] = np.asarray(value)
            origins[name] = (node.op_type, tuple(node.input))
    used = {v for node in kept for v in node.input}
    fresh = onnx.helper.make_graph(
        kept,
        graph.name,
        [v for v in graph.input if v.name not in known],
        list(graph.output),
        [numpy_helper.from_array(value, name) for name, value in known.items() if name in used],
    )
    folded = onnx.helper.make_model(fresh, opset_imports=model.opset_import)
    folded.ir_version = model.ir_version
    return CheckedModel(folded, known, origins)


def _single(node: Any, inputs: list[str]) -> Any:
    """A model of one node, its inputs as graph inputs of unknown type."""
    import onnx

    graph = onnx.helper.make_graph(
        [node],
        "fold",
        [onnx.helper.make_empty_tensor_value_info(v) for v in inputs],
        [onnx.helper.make_empty_tensor_value_info(v) for v in node.output],
    )
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 21)])


def run_values(
    checked: Any, images: list[str], values: list[str], inputs: list[np.ndarray]
) -> list[np.ndarray]:
    """`values` of the model computed by ONNX Runtime from channels-last `inputs` (fed to
    the graph inputs `images`, channels first), channels-last again; one example at a time:
    an exported model often fixes its batch at 1."""
    import onnx
    import onnxruntime as ort

    model = onnx.ModelProto()
    model.CopyFrom(checked)  # outputs are added to a copy: the read file stays as read
    known = {v.name for v in model.graph.output}
    for value in values:
        if value not in known:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(value))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    runs = []
    for index in range(len(inputs[0])):
        feeds = {
            name: np.ascontiguousarray(x[index : index + 1].transpose(0, 3, 1, 2))
            for name, x in zip(images, inputs, strict=True)
        }
        runs.append(session.run(values, feeds))
    results = [np.concatenate([run[k] for run in runs]) for k in range(len(values))]
    return [r.transpose(0, 2, 3, 1) if r.ndim == 4 else r for r in map(np.asarray, results)]
