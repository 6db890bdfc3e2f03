"""Block definitions: the instances of one block that share a structure, written once.

An instance's layers are lowered as the build lowers them; arguments that differ between
the instances of one structure become parameters of the definition (one per distinct
column of values, annotated from the values as printed), names made from the instance's
name become f-strings of `name`, and everything else stays a literal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from xgraph.backend.lowering import LayerCall
from xgraph.codegen.model import BLOCK_INPUT, BlockDef, LayerStep, Param, Printer
from xgraph.codegen.names import identifier
from xgraph.codegen.source import Code, annotation, plain, python_literal
from xgraph.codegen.variables import Slot, allocate
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node

SlotKey = tuple[int, int, str]  # step, layer call, keyword argument


@dataclass(frozen=True)
class Instance:
    """A block instance as the definition sees it: its structure (`skeleton`, equal for
    instances one definition can serve) and the values that may differ."""

    name: str
    block: str
    nodes: tuple[Node, ...]
    input: str
    skeleton: tuple[Any, ...]
    keys: tuple[SlotKey, ...]
    values: tuple[Any, ...]  # one per key
    steps: tuple[LayerStep, ...]


def _abstract(value: Any, instance: str) -> Any:
    """Names made from the instance's name become f-strings of the block's `name`."""
    if isinstance(value, str) and (value == instance or value.startswith(f"{instance}_")):
        return Code('f"{name}' + value[len(instance) :] + '"')
    return value


def instance(
    analysed: AnalysedGraph, printer: Printer, name: str, nodes: Sequence[Node]
) -> Instance | None:
    """An instance's structure and values, or None when it cannot share a definition: a
    node not named after the instance, several inputs from outside, or values used
    outside other than the last node's."""
    prefix = f"{name}_"
    inside = {node.name for node in nodes}
    outside_inputs = {s for node in nodes for s in node.inputs if s not in inside}
    if len(outside_inputs) != 1 or not all(n.name.startswith(prefix) for n in nodes):
        return None
    graph = analysed.graph
    for node in nodes[:-1]:
        if node.name in graph.outputs or any(c not in inside for c in graph.consumers(node.name)):
            return None
    skeleton: list[Any] = []
    keys: list[SlotKey] = []
    values: list[Any] = []
    steps = []
    for step_index, node in enumerate(nodes):
        calls = []
        shape: list[tuple[str, str | None]] = []
        for call_index, call in enumerate(printer.lower(analysed, node)):
            structural = printer.structural(call)
            kwargs = {}
            for key, raw in call.kwargs.items():
                value = kwargs[key] = _abstract(raw, name)
                if key in structural or isinstance(value, Code):
                    shape.append((key, python_literal(value)))
                else:
                    shape.append((key, None))
                    keys.append((step_index, call_index, key))
                    values.append(plain(key, value))
            shape.append((call.module, call.cls))
            calls.append(LayerCall(call.module, call.cls, kwargs))
        refs = tuple(s[len(prefix) :] if s in inside else BLOCK_INPUT for s in node.inputs)
        ranks = tuple(len(shape_) for shape_ in analysed.input_shape_of(node))
        local = node.name[len(prefix) :]
        skeleton.append((local, node.op, refs, ranks, tuple(shape)))
        code = Code('f"{name}_' + local + '"')
        steps.append(LayerStep(node, code, local, tuple(calls), ranks))
    # the block this instance uses: at its own depth among the node's nested instances
    depth = nodes[0].block.index(name) if name in nodes[0].block else 0
    uses = nodes[0].block_uses
    block = uses[depth] if depth < len(uses) else "block"
    (block_input,) = outside_inputs
    return Instance(
        name,
        block,
        tuple(nodes),
        block_input,
        tuple(skeleton),
        tuple(keys),
        tuple(values),
        tuple(steps),
    )


def define(
    group: Sequence[Instance], taken: set[str], printer: Printer
) -> tuple[BlockDef, list[dict[str, Any]]]:
    """One definition for instances of one structure, and each instance's arguments."""
    first = group[0]
    columns = list(zip(*(inst.values for inst in group), strict=True)) if first.keys else []
    locals_ = {s.local for s in first.steps}
    used = {"x", "name", "self", *printer.RESERVED}
    param_of: dict[tuple[str, ...], tuple[str, tuple[Any, ...]]] = {}
    slot_param: dict[SlotKey, str] = {}
    for key, column in zip(first.keys, columns, strict=True):
        texts = tuple(map(python_literal, column))
        if len(set(texts)) == 1:
            continue
        if texts not in param_of:
            local = first.steps[key[0]].local
            param = identifier(key[2], "value")
            if param in used or param in locals_:
                param = identifier(f"{local}_{key[2]}", "value")
            while param in used:
                param += "_"
            used.add(param)
            param_of[texts] = (param, column)
        slot_param[key] = param_of[texts][0]
    steps = []
    for step_index, step in enumerate(first.steps):
        calls = tuple(
            LayerCall(
                call.module,
                call.cls,
                {
                    key: Code(slot_param[(step_index, call_index, key)])
                    if (step_index, call_index, key) in slot_param
                    else value
                    for key, value in call.kwargs.items()
                },
            )
            for call_index, call in enumerate(step.calls)
        )
        steps.append(LayerStep(step.node, step.name, step.local, calls, step.input_ranks))
    inside = {node.name for node in first.nodes}
    prefix = f"{first.name}_"
    slots = [
        Slot(
            step,
            tuple(s[len(prefix) :] if s in inside else BLOCK_INPUT for s in step.node.inputs),
            step.local,
            step.local,
        )
        for step in steps
    ]
    last = first.steps[-1].local
    body, var_of = allocate(slots, {BLOCK_INPUT: "x"}, [last], used, "shortcut")
    params = tuple(Param(param, annotation(column)) for param, column in param_of.values())
    name = printer.block_name(first.block, taken)
    definition = BlockDef(name, first.block, params, tuple(body), var_of[last])
    args = [{param: column[i] for param, column in param_of.values()} for i in range(len(group))]
    return definition, args
