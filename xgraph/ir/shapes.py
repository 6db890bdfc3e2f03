"""Shape inference: each node's output shape from its inputs', in (H, W, C) order."""

from __future__ import annotations

import math

from xgraph.budgets import Budgets, active_budgets
from xgraph.errors import SpecError
from xgraph.ir.check import block_notes
from xgraph.ir.graph import Graph, Node
from xgraph.ops.base import Shape, ShapeError, format_shape


def infer_shapes(graph: Graph, budgets: Budgets | None = None) -> dict[str, Shape]:
    """Every node's output shape, within the `activation_elements` budget. Nodes of one op
    with the same attributes object and input shapes (a repeated block's) share one answer,
    computed once."""
    budgets = active_budgets(budgets)
    shapes: dict[str, Shape] = {}
    known: dict[tuple[object, ...], Shape] = {}
    for node in graph.nodes:
        inputs = [shapes[name] for name in node.inputs]
        key = (node.op, id(node.attrs), *inputs)
        shape = known.get(key)
        if shape is None:
            shape = known[key] = _infer_one(node, inputs)
            if math.prod(shape) > budgets.activation_elements:
                raise budgets.exceeded(
                    "activation_elements",
                    f"node '{node.name}': its output of shape {format_shape(shape)} has "
                    f"{math.prod(shape):,} elements per example, "
                    f"more than {budgets.activation_elements:,}",
                    node.location,
                    notes=block_notes(node),
                )
        shapes[node.name] = shape
    return shapes


def _infer_one(node: Node, inputs: list[Shape]) -> Shape:
    try:
        return tuple(node.opdef.infer_shape(node.attrs, inputs))
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
