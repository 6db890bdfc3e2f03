"""Shape inference: each node's output shape from its inputs', in (H, W, C) order."""

from __future__ import annotations

from xgraph.errors import SpecError
from xgraph.graph import Graph
from xgraph.ops.base import Shape, ShapeError, format_shape
from xgraph.passes.check import block_notes


def infer_shapes(graph: Graph) -> dict[str, Shape]:
    shapes: dict[str, Shape] = {}
    for node in graph.nodes:
        inputs = [shapes[name] for name in node.inputs]
        try:
            shapes[node.name] = tuple(node.opdef.infer_shape(node.attrs, inputs))
        except ShapeError as exc:
            notes = [
                f"input '{n}' has shape {format_shape(s)}"
                for n, s in zip(node.inputs, inputs, strict=True)
            ]
            # No attribute at fault: the inputs are, so point at them where they are written.
            location = node.where(exc.attr or "inputs")
            raise SpecError(
                f"node '{node.name}': {exc}", location, notes=[*notes, *block_notes(node)]
            ) from None
    return shapes
