"""The canonical weights format: safetensors, one tensor per node parameter.

Names are `<node>/<param>` (`block2_sepconv1/depthwise_kernel`), the parameter names and
shapes each op's definition gives, in Keras's channels-last layout: kernels (kh, kw, in, out),
depthwise kernels (kh, kw, in, multiplier), dense kernels (in, out); float32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xgraph.analysis import AnalysedGraph
from xgraph.errors import SpecError
from xgraph.files import save_atomically
from xgraph.init import Weights, weight_key
from xgraph.ops.base import format_shape

FORMAT = "xgraph-canonical"
VERSION = "1"


def expected_shapes(analysed: AnalysedGraph) -> dict[str, tuple[int, ...]]:
    return {
        weight_key(node.name, param.name): param.shape
        for node in analysed.graph.nodes
        for param in analysed.counts[node.name].params
    }


def check_complete(analysed: AnalysedGraph, weights: Weights, source: str) -> Weights:
    """Exactly the graph's tensors, each of its shape; a report of every difference if not."""
    expected = expected_shapes(analysed)
    missing = [key for key in expected if key not in weights]
    unexpected = [key for key in weights if key not in expected]
    wrong = [
        f"{key}: expected {format_shape(shape)}, found {format_shape(weights[key].shape)}"
        for key, shape in expected.items()
        if key in weights and tuple(weights[key].shape) != shape
    ]
    if missing or unexpected or wrong:
        notes = [f"missing: {key} {format_shape(expected[key])}" for key in missing[:8]]
        notes += [
            f"not in the graph: {key} {format_shape(weights[key].shape)}" for key in unexpected[:8]
        ]
        notes += [f"wrong shape: {line}" for line in wrong[:8]]
        raise SpecError(
            f"{source}: the weights do not fit '{analysed.name}': {len(missing)} missing, "
            f"{len(unexpected)} not in the graph, {len(wrong)} of the wrong shape",
            hint="is the file from this architecture, with the same --set parameters?",
            notes=notes,
        )
    return {key: np.asarray(weights[key], dtype=np.float32) for key in expected}


def read_canonical(path: Path, analysed: AnalysedGraph) -> Weights:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        weights = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise SpecError(f"{path}: cannot read safetensors: {exc}") from None
    return check_complete(analysed, weights, str(path))


def write_canonical(path: Path, analysed: AnalysedGraph, weights: Weights) -> None:
    from safetensors.numpy import save_file

    tensors = {key: np.ascontiguousarray(value, dtype=np.float32) for key, value in weights.items()}
    metadata = {"format": FORMAT, "version": VERSION, "graph": analysed.name}
    save_atomically(path, lambda target: save_file(tensors, str(target), metadata=metadata))
