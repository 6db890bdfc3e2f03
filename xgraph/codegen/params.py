"""Spec parameters that only change argument values become keyword arguments of the model.

Expansion records where an attribute is exactly a spec parameter that nothing else reads
(`units: ${classes}`; `Node.param_refs`). Such a parameter stays a parameter in the code
when, lowering its nodes again with another value, the layers are the same and only the
arguments equal to the parameter change, and no other node sees a different shape: one
node's lowering at a time, without reading or compiling the spec again.
"""

from __future__ import annotations

import dataclasses
import keyword
from typing import Any

from xgraph.backend.lowering import LayerCall
from xgraph.codegen.model import Param, Printer
from xgraph.codegen.source import annotation, python_literal
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node

Position = tuple[str, int, str]  # node, layer call, keyword argument


def _alternative(value: Any) -> Any:
    """Another value of the same type, to see what the parameter changes; None: none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2 if value else 0.5
    return None


def _changed(
    analysed: AnalysedGraph, printer: Printer, node: Node, attr: str, value: Any, other: Any
) -> list[Position] | None:
    """The arguments `attr` of `node` becomes, or None when it changes more than values."""
    try:
        attrs = node.attrs.model_copy(update={attr: other})
        variant = dataclasses.replace(node, attrs=attrs)
        shape = tuple(node.opdef.infer_shape(attrs, analysed.input_shape_of(node)))
        if shape != tuple(analysed.shapes[node.name]) and analysed.graph.consumers(node.name):
            return None  # another node's layers would change too
        shapes = {**analysed.shapes, node.name: shape}
        before = printer.lower(analysed, node)
        after = printer.lower(dataclasses.replace(analysed, shapes=shapes), variant)
    except Exception:  # a value the op refuses: the parameter stays resolved
        return None
    return _positions(printer, node.name, before, after, value, other)


def _positions(
    printer: Printer,
    node: str,
    before: list[LayerCall],
    after: list[LayerCall],
    value: Any,
    other: Any,
) -> list[Position] | None:
    if len(before) != len(after):
        return None
    found = []
    for index, (call, changed) in enumerate(zip(before, after, strict=True)):
        if (call.module, call.cls, list(call.kwargs)) != (
            changed.module,
            changed.cls,
            list(changed.kwargs),
        ):
            return None
        for key, was in call.kwargs.items():
            now = changed.kwargs[key]
            if python_literal(was) == python_literal(now):
                continue
            if (
                python_literal(was) != python_literal(value)
                or python_literal(now) != python_literal(other)
                or key in printer.structural(call)
            ):
                return None
            found.append((node, index, key))
    return found


def value_params(
    analysed: AnalysedGraph, printer: Printer
) -> tuple[dict[Position, str], tuple[Param, ...]]:
    """Where each value-only parameter goes (node, call, argument), and the parameters
    with their spec values as defaults; any other parameter is resolved."""
    uses: dict[str, list[tuple[Node, str]]] = {}
    for node in analysed.graph.nodes:
        if not node.block:
            for attr, param in node.param_refs.items():
                uses.setdefault(param, []).append((node, attr))
    positions: dict[Position, str] = {}
    params = []
    for param, refs in uses.items():
        value = analysed.params.get(param)
        other = _alternative(value)
        if other is None or param in printer.RESERVED or keyword.iskeyword(param):
            continue
        found: list[Position] = []
        for node, attr in refs:
            changed = _changed(analysed, printer, node, attr, value, other)
            if changed is None:
                found = []
                break
            found += changed
        if found:
            positions.update(dict.fromkeys(found, param))
            params.append(Param(param, annotation([value]), value))
    return positions, tuple(params)
