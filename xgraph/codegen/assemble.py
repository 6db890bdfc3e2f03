"""The program for an analysed graph: units (a node, or a whole block instance), block
definitions for instances that share a structure, loops over runs of them, variables.
Everything comes from the analysed graph: no spec file is read, nothing is compiled again.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any

from xgraph import __version__
from xgraph.backend.lowering import LayerCall
from xgraph.codegen.blocks import Instance, define, instance
from xgraph.codegen.model import (
    BlockCall,
    BlockDef,
    Comment,
    LayerStep,
    Loop,
    Printer,
    Program,
    Statement,
)
from xgraph.codegen.names import class_name, clear_of, comment_lines, identifier
from xgraph.codegen.params import Position, value_params
from xgraph.codegen.source import Code, python_literal
from xgraph.codegen.variables import Slot, allocate
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node

_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def _units(
    analysed: AnalysedGraph, fits: Callable[[str, list[Node]], bool]
) -> list[tuple[str, list[Node]]]:
    """The nodes in topological order as units: a node (""), or a whole block instance whose
    nodes come one after another. An instance that holds instances of its own and that no
    definition can take (`fits`: ConvNeXt's stage, whose downsampling nodes are named after
    the model) is its name alone, then its own instances (each ConvNeXt block), and so down."""
    nodes = [node for node in analysed.graph.nodes if node.op != "input"]
    position = {node.name: i for i, node in enumerate(analysed.graph.nodes)}
    return _split(nodes, 0, position, fits)


def _split(
    nodes: list[Node],
    depth: int,
    position: dict[str, int],
    fits: Callable[[str, list[Node]], bool],
) -> list[tuple[str, list[Node]]]:
    members: dict[str, list[Node]] = {}
    for node in nodes:
        if len(node.block) > depth:
            members.setdefault(node.block[depth], []).append(node)
    units: list[tuple[str, list[Node]]] = []
    emitted: set[str] = set()
    for node in nodes:
        if len(node.block) > depth:
            name = node.block[depth]
            group = members[name]
            span = [position[n.name] for n in group]
            if span == list(range(span[0], span[0] + len(span))):
                if name not in emitted:
                    emitted.add(name)
                    nested = any(len(n.block) > depth + 1 for n in group)
                    if nested and not fits(name, group):
                        units.append((name, []))  # its name, as a comment
                        units += _split(group, depth + 1, position, fits)
                    else:
                        units.append((name, group))
                continue
        units.append(("", [node]))
    return units


def _definitions(
    analysed: AnalysedGraph, printer: Printer, units: list[tuple[str, list[Node]]], taken: set[str]
) -> tuple[list[BlockDef], dict[str, tuple[BlockDef, dict[str, Any], Instance]]]:
    """A definition for each structure of a block that two instances or more share (and
    the other structures of a block whose instances take two values)."""
    groups: dict[tuple[str, tuple[Any, ...]], list[Instance]] = {}
    for name, nodes in units:
        if name and nodes and (found := instance(analysed, printer, name, nodes)) is not None:
            groups.setdefault((found.block, found.skeleton), []).append(found)
    definitions = []
    call_of = {}
    # a structure two instances share; and where a block's instances thread a second value
    # (NASNet's cells: `x, previous = cell(x, previous), x`), any other structure it has,
    # so that the threading reads as calls throughout (the stem's reduction cells too)
    threading = {inst.block for group in groups.values() for inst in group if len(inst.inputs) > 1}
    common = {group[0].block for group in groups.values() if len(group) >= 2} & threading
    shared = [g for g in groups.values() if len(g) >= 2 or g[0].block in common]
    structures: dict[str, int] = {}  # block -> structures so far
    variant: dict[str, int] = {}  # first instance -> its structure's number
    # a block's most used structure takes its name, the others `<block>_2`, ... in order
    for group in sorted(shared, key=lambda g: -len(g)):
        structures[group[0].block] = variant[group[0].name] = structures.get(group[0].block, 0) + 1
    for group in shared:
        definition, args = define(group, taken, printer, variant[group[0].name])
        definitions.append(definition)
        for inst, arguments in zip(group, args, strict=True):
            call_of[inst.name] = (definition, arguments, inst)
    return definitions, call_of


def _step(
    analysed: AnalysedGraph, printer: Printer, node: Node, unit: str, values: dict[Position, str]
) -> LayerStep:
    """A node outside block definitions, value-only spec parameters as parameters."""
    local = node.name[len(unit) + 1 :] if unit and node.name.startswith(f"{unit}_") else node.name
    calls = tuple(
        LayerCall(
            call.module,
            call.cls,
            {
                key: Code(values[(node.name, index, key)])
                if (node.name, index, key) in values
                else value
                for key, value in call.kwargs.items()
            },
        )
        for index, call in enumerate(printer.lower(analysed, node))
    )
    ranks = tuple(len(s) for s in analysed.input_shape_of(node))
    return LayerStep(node, node.name, local, calls, ranks)


def build_program(
    analysed: AnalysedGraph, printer: Printer, source: str, line_length: int
) -> Program:
    """The program `printer` renders for `analysed`; `source` names where it came from."""
    graph = analysed.graph
    values, params = value_params(analysed, printer)
    units = _units(
        analysed, lambda name, nodes: instance(analysed, printer, name, nodes) is not None
    )
    taken = {
        "forward",
        identifier(graph.name, "model"),
        *printer.RESERVED,
        *printer.TAKEN,
        *(node.name for node in graph.nodes),
        *(param.name for param in params),
    }
    definitions, call_of = _definitions(analysed, printer, units, taken)
    slots: list[Slot | Comment] = []
    for name, nodes in units:
        if name in call_of:
            definition, arguments, inst = call_of[name]
            names = tuple(node.name for node in nodes)
            call = BlockCall(definition, name, arguments, names, label=inst.naming.tag)
            slots.append(Slot(call, inst.inputs, nodes[-1].name, nodes[-1].name))
            continue
        if name:
            slots.append(Comment(name))
        for node in nodes:
            step = _step(analysed, printer, node, name, values)
            slots.append(Slot(step, node.inputs, node.name, step.local))
    slots = _named_after_parameters(slots)
    inputs = [
        LayerStep(graph[name], name, name, tuple(printer.lower(analysed, graph[name])), ())
        for name in graph.inputs
    ]
    names_in_use = {*printer.RESERVED, *(d.name for d in definitions)}
    scope = {
        name: (
            printer.INPUT_VAR
            if len(inputs) == 1
            else clear_of(identifier(name, "input"), names_in_use)
        )
        for name in graph.inputs
    }
    inputs = [dataclasses.replace(s, output=scope[s.node.name]) for s in inputs]
    keep = [*graph.outputs, *(graph.inputs if printer.KEEP_INPUTS else ())]
    body, var_of = allocate(slots, scope, keep, names_in_use, "shortcut")
    return Program(
        spec_name=graph.name,
        class_name=class_name(graph.name),
        function_name=clear_of(identifier(graph.name, "model"), names_in_use),
        description=graph.description,
        header=tuple(_header(source, analysed, line_length)),
        inputs=tuple(inputs),
        body=tuple(_loops(body)),
        outputs=tuple(var_of[name] for name in graph.outputs),
        blocks=tuple(definitions),
        analysed=analysed,
        params=params,
        line_length=line_length,
    )


def _named_after_parameters(slots: list[Slot | Comment]) -> list[Slot | Comment]:
    """A value a block call takes as its second input, or later, prefers the definition's
    name for it (`previous`), so that the variable reads as what the block does with it."""
    wanted: dict[str, str] = {}
    for slot in slots:
        if isinstance(slot, Slot) and isinstance(slot.item, BlockCall):
            for value, name in zip(slot.inputs[1:], slot.item.block.inputs[1:], strict=True):
                wanted.setdefault(value, name)
    return [
        dataclasses.replace(slot, preferred=wanted[slot.output])
        if isinstance(slot, Slot) and slot.output in wanted
        else slot
        for slot in slots
    ]


def _header(source: str, analysed: AnalysedGraph, line_length: int) -> list[str]:
    """Comment lines (without '# ') saying where the code came from."""
    params = ", ".join(f"{k}={python_literal(v)}" for k, v in analysed.params.items())
    text = (
        f"Generated by xgraph {__version__} from {source} (spec '{analysed.name}'), "
        f"parameters: {params or 'none'}."
    )
    return comment_lines(text, line_length - 2)


def _numbered(text: str | Code, start: int) -> str | None:
    """`prefix` where `text` is `<prefix><start>`, a prefix an f-string can hold."""
    m = _NUMBERED.match(str(text))
    if m is None or int(m.group(2)) != start or "{" in m.group(1) or "}" in m.group(1):
        return None
    return m.group(1)


def _same_step(item: BlockCall, nxt: Statement, prefixes: tuple[str, str], index: int) -> bool:
    """Whether `nxt` is the call after `item`'s `index` - 1 successors in one loop: the same
    definition and arguments, instance and label numbered on, the same variables."""
    return (
        isinstance(nxt, BlockCall)
        and nxt.block is item.block
        and nxt.instance == f"{prefixes[0]}{index}"
        and nxt.label == f"{prefixes[1]}{index}"
        and nxt.inputs == item.inputs
        and nxt.output == item.output
        and (nxt.carry == item.carry or not nxt.carry)  # the last needs `previous` no more
        and python_literal(dict(nxt.args)) == python_literal(dict(item.args))
    )


def _loopable(item: BlockCall) -> bool:
    """A call whose variables carry on to the next: `x = block(x)`, or `x, previous =
    cell(x, previous), x`."""
    ahead = (item.output, item.carry) if item.carry else (item.output,)
    return item.inputs == ahead


def _loops(body: Sequence[Statement]) -> list[Statement]:
    """Runs of calls to one definition, on instances `<prefix><i>` with consecutive i and
    otherwise equal arguments, each from and to the same variables, as one `for` loop."""
    result: list[Statement] = []
    index = 0
    while index < len(body):
        item = body[index]
        run = _run(body, index) if isinstance(item, BlockCall) else None
        if run is None or not isinstance(item, BlockCall):
            result.append(item)
            index += 1
            continue
        start, stop, prefixes = run
        calls = body[index : index + stop - start]
        nodes = tuple(n for call in calls if isinstance(call, BlockCall) for n in call.nodes)
        instance, label = (_f_string(prefix) for prefix in prefixes)
        call = dataclasses.replace(item, instance=instance, label=label, nodes=nodes)
        result.append(Loop("i", start, stop, (call,)))
        index += stop - start
    return result


def _run(body: Sequence[Statement], index: int) -> tuple[int, int, tuple[str, str]] | None:
    """The range of numbers and the (instance, label) prefixes of the loop that the call at
    `index` starts, if one of two calls or more does."""
    item = body[index]
    assert isinstance(item, BlockCall)
    m = _NUMBERED.match(str(item.instance))
    if m is None or not _loopable(item):
        return None
    start = int(m.group(2))
    instance, label = _numbered(item.instance, start), _numbered(item.label, start)
    if instance is None or label is None:
        return None
    stop = start + 1
    while index + stop - start < len(body) and _same_step(
        item, (nxt := body[index + stop - start]), (instance, label), stop
    ):
        stop += 1
        if isinstance(nxt, BlockCall) and nxt.carry != item.carry:
            break
    return (start, stop, (instance, label)) if stop - start >= 2 else None


def _f_string(prefix: str) -> Code:
    """`f"<prefix>{i}"`."""
    return Code(f'f"{python_literal(prefix)[1:-1]}{{i}}"')
