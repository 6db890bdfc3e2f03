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
from xgraph.codegen.model import BlockDef, LayerStep, Param, Printer, block_input
from xgraph.codegen.names import identifier
from xgraph.codegen.source import Code, annotation, plain, python_literal
from xgraph.codegen.variables import Slot, allocate
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node

SlotKey = tuple[int, int, str]  # step, layer call, keyword argument


@dataclass(frozen=True)
class Naming:
    """How an instance's nodes are named: `<tag>_<local>` (Xception's `block3_sepconv1`) or,
    as NASNet's cells, `<local>_<tag>` (`normal_conv_1_5`)."""

    tag: str
    suffix: bool

    def local(self, node: str) -> str:
        return node[: -len(self.tag) - 1] if self.suffix else node[len(self.tag) + 1 :]

    def owns(self, node: str) -> bool:
        if self.suffix:
            return node.endswith(f"_{self.tag}") and len(node) > len(self.tag) + 1
        return node.startswith(f"{self.tag}_")

    def code(self, local: str) -> Code:
        """The node's name as an f-string of the definition's `name`."""
        return Code(f'f"{local}_{{name}}"' if self.suffix else f'f"{{name}}_{local}"')


def naming(name: str, nodes: Sequence[Node]) -> Naming | None:
    """The instance's name, or the end of it after an underscore (`5` of `cell_5`), that
    starts or ends the name of every node in it; None when there is none."""
    parts = name.split("_")
    tags = [name, *("_".join(parts[i:]) for i in range(1, len(parts)))]
    for tag in tags:
        for suffix in (False, True):
            candidate = Naming(tag, suffix)
            if tag and all(candidate.owns(node.name) for node in nodes):
                return candidate
    return None


@dataclass(frozen=True)
class Instance:
    """A block instance as the definition sees it: its structure (`skeleton`, equal for
    instances one definition can serve) and the values that may differ."""

    name: str
    block: str
    nodes: tuple[Node, ...]
    inputs: tuple[str, ...]  # the values it takes from outside, the latest first
    naming: Naming
    skeleton: tuple[Any, ...]
    keys: tuple[SlotKey, ...]
    values: tuple[Any, ...]  # one per key
    steps: tuple[LayerStep, ...]


def _abstract(value: Any, naming: Naming) -> Any:
    """Names made with the instance's tag become f-strings of the block's `name`."""
    if isinstance(value, str) and (value == naming.tag or naming.owns(value)):
        return Code('f"{name}"') if value == naming.tag else naming.code(naming.local(value))
    return value


def instance(
    analysed: AnalysedGraph, printer: Printer, name: str, nodes: Sequence[Node]
) -> Instance | None:
    """An instance's structure and values, or None when it cannot share a definition: a
    node not named with the instance's tag, or values used outside other than the last
    node's."""
    named = naming(name, nodes)
    if named is None:
        return None
    inside = {node.name for node in nodes}
    graph = analysed.graph
    order = {node.name: index for index, node in enumerate(graph.nodes)}
    # the latest value first, the main path (a NASNet cell's previous cell's output), then
    # the older ones (`previous`: the cell's before)
    outside = sorted(
        {s for node in nodes for s in node.inputs if s not in inside},
        key=lambda value: order[value],
        reverse=True,
    )
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
                value = kwargs[key] = _abstract(raw, named)
                if key in structural or isinstance(value, Code):
                    shape.append((key, python_literal(value)))
                else:
                    shape.append((key, None))
                    keys.append((step_index, call_index, key))
                    values.append(plain(key, value))
            shape.append((call.module, call.cls))
            calls.append(LayerCall(call.module, call.cls, kwargs))
        refs = tuple(
            named.local(s) if s in inside else block_input(outside.index(s)) for s in node.inputs
        )
        ranks = tuple(len(shape_) for shape_ in analysed.input_shape_of(node))
        local = named.local(node.name)
        skeleton.append((local, node.op, refs, ranks, tuple(shape)))
        steps.append(LayerStep(node, named.code(local), local, tuple(calls), ranks, refs))
    # the block this instance uses: at its own depth among the node's nested instances
    depth = nodes[0].block.index(name) if name in nodes[0].block else 0
    uses = nodes[0].block_uses
    block = uses[depth] if depth < len(uses) else "block"
    return Instance(
        name,
        block,
        tuple(nodes),
        tuple(outside),
        named,
        (named.suffix, len(outside), *skeleton),
        tuple(keys),
        tuple(values),
        tuple(steps),
    )


def _derived(column: tuple[Any, ...], named: list[tuple[str, tuple[Any, ...]]]) -> str | None:
    """`filters // 2` or `filters * 2` where `column` is that of a named parameter's."""
    if not all(type(v) is int for v in column):
        return None
    for name, base in named:
        if not all(type(v) is int and v != 0 for v in base):
            continue
        for factor in range(2, 9):
            if all(b == v * factor for v, b in zip(column, base, strict=True)):
                return f"{name} // {factor}"
            if all(v == b * factor for v, b in zip(column, base, strict=True)):
                return f"{name} * {factor}"
    return None


def input_names(count: int) -> tuple[str, ...]:
    """The variables of a definition's input values: `x`, then `previous` (NASNet's `p`,
    the output of the cell before the previous one), `previous_2`, ..."""
    return ("x", *(f"previous{'' if i == 1 else f'_{i}'}" for i in range(1, count)))


def define(
    group: Sequence[Instance], taken: set[str], printer: Printer, variant: int = 1
) -> tuple[BlockDef, list[dict[str, Any]]]:
    """One definition for instances of one structure, and each instance's arguments. The
    `variant`-th structure of a block (NASNet's first normal cell of a stack, which halves
    its `previous`, is another than the others) is named `<block>_<variant>` from 2 on, and
    lists its instances."""
    first = group[0]
    columns = list(zip(*(inst.values for inst in group), strict=True)) if first.keys else []
    locals_ = {s.local for s in first.steps}
    used = {*input_names(len(first.inputs)), "name", "self", *printer.RESERVED}
    keys_of: dict[tuple[str, ...], list[SlotKey]] = {}
    column_of: dict[tuple[str, ...], tuple[Any, ...]] = {}
    for key, column in zip(first.keys, columns, strict=True):
        texts = tuple(map(python_literal, column))
        if len(set(texts)) > 1:
            keys_of.setdefault(texts, []).append(key)
            column_of[texts] = column
    # the most used column of values first: it takes the plain name (`filters`), and a
    # column that is an exact multiple or fraction of a named one is written from it
    param_of: dict[tuple[str, ...], tuple[str, tuple[Any, ...]]] = {}
    code_of: dict[tuple[str, ...], str] = {}
    for texts in sorted(keys_of, key=lambda t: -len(keys_of[t])):
        column = column_of[texts]
        derived = _derived(column, [(n, c) for n, c in param_of.values()])
        if derived is not None:
            code_of[texts] = derived
            continue
        step_index, _, kwarg = keys_of[texts][0]
        param = identifier(kwarg, "value")
        if param in used or param in locals_:
            param = identifier(f"{first.steps[step_index].local}_{kwarg}", "value")
        while param in used:
            param += "_"
        used.add(param)
        param_of[texts] = (param, column)
        code_of[texts] = param
    param_of = {t: param_of[t] for t in keys_of if t in param_of}  # in the order first met
    slot_param = {key: code_of[texts] for texts, keys in keys_of.items() for key in keys}
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
        steps.append(
            LayerStep(step.node, step.name, step.local, calls, step.input_ranks, step.inputs)
        )
    slots = [Slot(step, step.inputs, step.local, step.local) for step in steps]
    inputs = input_names(len(first.inputs))
    scope = {block_input(index): var for index, var in enumerate(inputs)}
    last = first.steps[-1].local
    body, var_of = allocate(slots, scope, [last], {*used, *inputs}, "shortcut")
    params = tuple(Param(param, annotation(column)) for param, column in param_of.values())
    label = first.block if variant == 1 else f"{first.block}_{variant}"
    name = printer.block_name(label, taken)
    instances = tuple(inst.name for inst in group) if variant > 1 else ()
    definition = BlockDef(name, first.block, params, tuple(body), var_of[last], inputs, instances)
    args = [{param: column[i] for param, column in param_of.values()} for i in range(len(group))]
    return definition, args
