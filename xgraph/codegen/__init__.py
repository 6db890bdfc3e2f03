"""Code generation: a spec's analysed graph as one standalone, readable Python module.

The core is framework-free. It lowers every node through the backend's own op rules (the
`LayerCall` descriptions the builders instantiate), groups the nodes of block instances that
share a structure into one function, turns runs of such instances into loops, and gives every
value a Python variable. A backend's printer (`xgraph_<backend>.codegen`) turns that program
into source through its jinja2 templates; the source is compiled before it is returned.

Names: node names are validated identifiers, and `validate` has refused those a backend
cannot use (xgraph.backend.names). Every name the code makes from spec text (functions, classes,
variables) is a Python identifier clear of the module's own names, and spec text printed in
docstrings and comments is escaped: no spec can make the generated module run code of its own.
"""

from __future__ import annotations

import inspect
import keyword
import re
import textwrap
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from xgraph import __version__
from xgraph.backend.lowering import LayerCall
from xgraph.backend.rules import require_rules
from xgraph.errors import SpecError, did_you_mean
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.spec.compile import validate_structure
from xgraph.spec.extends import load_yaml

LINE = 100  # the line length the generated code is formatted for (this project's ruff's)
PAIRS = {"kernel_size", "stride", "padding", "dilation", "strides", "pool_size", "dilation_rate"}
BLOCK_INPUT = "<input>"  # how a block's statements refer to the instance's input value


@dataclass(frozen=True)
class Code:
    """Python source that stands for a value: a parameter, a loop variable, an f-string."""

    text: str


@dataclass
class LayerStep:
    """One node: its layer calls, the variables it reads and the variable it writes.
    `name` is the node's name, or an f-string (`Code`) inside a block's function."""

    node: Node
    name: str | Code
    local: str
    calls: list[LayerCall]
    input_ranks: tuple[int, ...]
    inputs: list[str] = field(default_factory=list)
    output: str = ""


@dataclass
class Rename:
    """`target = source`: a value kept for later while `source` moves on (`shortcut = x`)."""

    target: str
    source: str


@dataclass
class Comment:
    text: str


@dataclass
class Function:
    """A block's layers, shared by its instances: `name` and `params` vary per instance."""

    name: str
    block: str
    params: list[str]
    body: list[Any]
    output: str
    param_types: dict[str, str] = field(default_factory=dict)


@dataclass
class BlockCall:
    function: Function
    instance: str | Code
    args: dict[str, Any]
    inputs: list[str] = field(default_factory=list)
    output: str = ""


@dataclass
class Loop:
    """`for var in range(start, stop):` around block calls that differ only by the index."""

    var: str
    start: int
    stop: int
    body: list[Any]


@dataclass
class Program:
    spec_name: str
    class_name: str
    function_name: str
    description: str
    header: list[str]
    inputs: list[LayerStep]
    body: list[Any]
    outputs: list[str]
    functions: list[Function]
    analysed: AnalysedGraph
    params: dict[str, Any] = field(default_factory=dict)  # keyword arguments, with defaults


class Printer(Protocol):
    """What a backend's `codegen` module offers the core."""

    RESERVED: frozenset[str]
    TAKEN: frozenset[str]  # names the generated class has already (an nn.Module's methods)
    FUNCTION_PREFIXES: tuple[str, ...]  # the names a block's function becomes: prefix + name
    INPUT_VAR: str  # the variable of a model's only input
    KEEP_INPUTS: bool  # whether the input variables stay alive to the end (Keras's Model call)

    def check_node_name(self, node: Node) -> None: ...

    def lower(self, analysed: AnalysedGraph, node: Node) -> list[LayerCall]: ...

    def structural(self, call: LayerCall) -> frozenset[str]: ...

    def render(self, program: Program) -> str: ...


def printer_for(backend: str) -> Printer:
    """The backend's printer, registered under the `xgraph.codegen` entry-point group."""
    from xgraph.plugins import CODEGEN, entries, load_entry

    found = {entry.name: entry for entry in entries(CODEGEN)}
    if backend not in found:
        raise SpecError(
            f"no code generator for backend '{backend}' (code generators: "
            f"{', '.join(sorted(found)) or 'none installed'})",
            hint=did_you_mean(backend, found),
        )
    return load_entry(found[backend])


def generate(
    analysed: AnalysedGraph,
    backend: str,
    spec_path: str | Path,
    overrides: Sequence[str] = (),
) -> str:
    """The Python module for `analysed` (compiled from `spec_path` with `overrides`) in the
    backend's framework; compiled with `compile()` before it is returned."""
    printer = printer_for(backend)
    require_rules(analysed, backend)
    for node in analysed.graph.nodes:
        printer.check_node_name(node)
    spec = validate_structure(load_yaml(spec_path))
    program = _program(analysed, printer, spec, str(spec_path), overrides)
    text = printer.render(program)
    try:
        compile(text, f"<xgraph codegen of {spec_path}>", "exec")
    except SyntaxError as exc:  # a bug in a printer, never the user's: say so plainly
        raise RuntimeError(f"generated {backend} code does not compile: {exc}") from exc
    return text


# --- names -----------------------------------------------------------------------------


def identifier(text: str, fallback: str) -> str:
    """`text` as a Python identifier (non-word characters as '_'), else `fallback`. It is
    NFKC-normalised first, as Python normalises identifiers (`ﬁlter` is `filter`)."""
    name = re.sub(r"\W", "_", unicodedata.normalize("NFKC", text))
    if not name or name[0].isdigit():
        name = f"{fallback}_{name}" if name else fallback
    return f"{name}_" if keyword.iskeyword(name) else name


def class_name(text: str) -> str:
    """`my_net` -> `MyNet`; a name with nothing left (`_`) is `Model`, a keyword gets '_'."""
    name = "".join(part[:1].upper() + part[1:] for part in identifier(text, "model").split("_"))
    if not name:
        return "Model"
    return f"{name}_" if keyword.iskeyword(name) else name


def printable(text: str) -> str:
    """`text` with every unprintable character (a control character, a line separator)
    written as its Python escape, for one line of a comment or a docstring."""
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def docstring_text(text: str) -> str:
    """Spec text made safe inside a triple-quoted docstring: backslashes doubled, and every
    double quote next to another or at the end escaped, so that nothing a spec says can
    close the string; a lone quote stays as written."""
    text = printable(text).replace("\\", "\\\\")
    return re.sub(r'"(?=")|(?<=")"|"$', r'\\"', text)


def docstring_lines(text: str, width: int) -> list[str]:
    """A description as the wrapped, escaped lines of a docstring."""
    lines = textwrap.wrap(" ".join(text.split()), width, break_long_words=False)
    return [docstring_text(line) for line in lines] or ["A generated model."]


def python_literal(value: Any) -> str:
    """A value as Python source, strings in double quotes as ruff formats them."""
    if isinstance(value, Code):
        return value.text
    if isinstance(value, str):
        text = repr(value)
        if text.startswith("'") and '"' not in value:
            text = '"' + text[1:-1].replace("\\'", "'") + '"'
        return text
    if isinstance(value, tuple):
        items = ", ".join(python_literal(v) for v in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    if isinstance(value, list):
        return "[" + ", ".join(python_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{python_literal(k)}: {python_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    if isinstance(value, float) and value != value:
        return 'float("nan")'
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return 'float("inf")' if value > 0 else '-float("inf")'
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    raise TypeError(f"cannot print {type(value).__name__} {value!r} as a Python literal")


# --- grouping block instances ------------------------------------------------------------


def _block_definitions(spec: Any, analysed: AnalysedGraph, spec_path: str) -> dict[str, str]:
    """Instance name -> the block it instantiates, found from where its nodes were written."""
    source = load_yaml(spec_path)
    written: dict[Any, str] = {}
    for block, decl in spec.blocks.items():
        for index in range(len(decl.nodes)):
            written[source.where.value(("blocks", block, "nodes", index))] = block
    found: dict[str, str] = {}
    for node in analysed.graph.nodes:
        if len(node.block) == 1 and node.location in written:
            found.setdefault(node.block[0], written[node.location])
    return found


@dataclass
class _Instance:
    name: str
    nodes: list[Node]
    input: str
    skeleton: tuple
    values: list[Any]  # one per value slot, in skeleton order
    steps: list[LayerStep]


def _abstract(value: Any, instance: str) -> Any:
    """Names made from the instance's name become f-strings of the block's `name`."""
    if isinstance(value, str) and (value == instance or value.startswith(f"{instance}_")):
        return Code('f"{name}' + value[len(instance) :] + '"')
    return value


def _instance(
    analysed: AnalysedGraph, printer: Printer, name: str, nodes: list[Node]
) -> _Instance | None:
    """An instance's structure and values, or None when it cannot be a function: a node
    not named after the instance, several inputs from outside, or values used outside
    other than the last node's."""
    prefix = f"{name}_"
    inside = {node.name for node in nodes}
    outside_inputs = {s for node in nodes for s in node.inputs if s not in inside}
    if len(outside_inputs) != 1 or not all(n.name.startswith(prefix) for n in nodes):
        return None
    graph = analysed.graph
    for node in nodes[:-1]:
        if node.name in graph.outputs or any(c not in inside for c in graph.consumers(node.name)):
            return None
    (block_input,) = outside_inputs
    skeleton: list[Any] = []
    values: list[Any] = []
    steps = []
    for node in nodes:
        calls = []
        shape: list[tuple[str, str | None]] = []
        for call in printer.lower(analysed, node):
            structural = printer.structural(call)
            kwargs = {}
            for key, raw in call.kwargs.items():
                value = _abstract(raw, name)
                if key in structural or isinstance(value, Code):
                    shape.append((key, python_literal(value)))
                    kwargs[key] = value
                else:
                    shape.append((key, None))
                    values.append(value)
                    kwargs[key] = value
            shape.append((call.module, call.cls))
            calls.append(LayerCall(call.module, call.cls, kwargs))
        refs = tuple(s[len(prefix) :] if s in inside else BLOCK_INPUT for s in node.inputs)
        ranks = tuple(len(shape_) for shape_ in analysed.input_shape_of(node))
        local = node.name[len(prefix) :]
        skeleton.append((local, node.op, refs, ranks, tuple(shape)))
        steps.append(LayerStep(node, Code('f"{name}_' + local + '"'), local, calls, ranks))
    return _Instance(name, nodes, block_input, tuple(skeleton), values, steps)


def _function(
    group: list[_Instance], block: str, taken: set[str], printer: Printer
) -> tuple[Function, list[dict[str, Any]]]:
    """One function for instances of one structure; values that differ between instances
    become its parameters (one per distinct column of values), named after the argument."""
    first = group[0]
    columns = list(zip(*(inst.values for inst in group), strict=True)) if first.values else []
    param_of_column: dict[tuple, str] = {}
    slot_param: list[str | None] = []
    locals_ = {s.local for s in first.steps}
    used = {"x", "name", "self", *printer.RESERVED}
    slot = 0
    for step in first.steps:
        for call in step.calls:
            for key, value in call.kwargs.items():
                if isinstance(value, Code) or key in printer.structural(call):
                    continue
                column = columns[slot]
                slot += 1
                if len(set(map(python_literal, column))) == 1:
                    slot_param.append(None)
                    continue
                if column not in param_of_column:
                    param = identifier(key, "value")
                    if param in used or param in locals_:
                        param = identifier(f"{step.local}_{key}", "value")
                    while param in used:
                        param += "_"
                    used.add(param)
                    param_of_column[column] = param
                slot_param.append(param_of_column[column])
    body = []
    slot = 0
    for step in first.steps:
        calls = []
        for call in step.calls:
            kwargs = {}
            for key, value in call.kwargs.items():
                if isinstance(value, Code) or key in printer.structural(call):
                    kwargs[key] = value
                    continue
                column_param = slot_param[slot]
                slot += 1
                kwargs[key] = Code(column_param) if column_param else value
            calls.append(LayerCall(call.module, call.cls, kwargs))
        body.append(LayerStep(step.node, step.name, step.local, calls, step.input_ranks))
    name = identifier(block, "block")
    # A block may become several names (torch: `add_<block>` and `<block>`): none may be
    # taken already, by another block, a node, or the framework's own class (`add_module`).
    while any(f"{prefix}{name}" in taken for prefix in printer.FUNCTION_PREFIXES):
        name = f"{name}_"
    taken.update(f"{prefix}{name}" for prefix in printer.FUNCTION_PREFIXES)
    params = list(param_of_column.values())
    types = {p: type(column[0]).__name__ for column, p in param_of_column.items()}
    prefix = f"{first.name}_"
    statements = [
        _Statement(
            step,
            [s[len(prefix) :] if s.startswith(prefix) else BLOCK_INPUT for s in step.node.inputs],
            step.local,
        )
        for step in body
    ]
    output = _allocate(statements, {BLOCK_INPUT: "x"}, [first.steps[-1].local], used, "shortcut")
    function = Function(
        name, block, params, _with_renames(statements), output[first.steps[-1].local], types
    )
    args = [
        {param: column[i] for column, param in param_of_column.items()} for i in range(len(group))
    ]
    return function, args


# --- variables ---------------------------------------------------------------------------


@dataclass
class _Statement:
    item: Any  # LayerStep or BlockCall
    inputs: list[str]  # value ids
    output: str  # value id
    renames: list[Rename] = field(default_factory=list)


def _main_path(statements: list[_Statement], output: str) -> set[str]:
    """The values from `output` back along first inputs: the ones that live in `x`."""
    made_by = {s.output: s for s in statements}
    path = {output}
    while output in made_by and made_by[output].inputs:
        output = made_by[output].inputs[0]
        path.add(output)
    return path


def _allocate(
    statements: list[_Statement],
    scope_inputs: dict[str, str],
    keep: list[str],
    reserved: set[str],
    input_name: str,
) -> dict[str, str]:
    """Give every value a variable: `x` along the main path (from the first output back along
    first inputs), a name of its own for a value off it (a residual branch), kept through
    the chain of layers that continue it; a value still needed when the main path moves on
    is first copied to a name of its own (`shortcut = x`)."""
    last: dict[str, float] = {}
    for index, statement in enumerate(statements):
        for value in statement.inputs:
            last[value] = index
    for value in keep:
        last[value] = float("inf")
    main = _main_path(statements, keep[0]) if keep else set()
    var_of = dict(scope_inputs)
    holder = {var: value for value, var in scope_inputs.items()}
    preferred = {
        s.output: s.item.local if isinstance(s.item, LayerStep) else s.output for s in statements
    }

    def free(var: str, index: int) -> bool:
        return var not in holder or last.get(holder[var], -1) <= index

    def fresh(value: str, index: int) -> str:
        base = preferred.get(value, input_name if value == BLOCK_INPUT else value)
        name = identifier(base, "value")
        while name in reserved or name == "x" or not free(name, index):
            name += "_"
        return name

    for index, statement in enumerate(statements):
        statement.item.inputs = [var_of[v] for v in statement.inputs]
        first = statement.inputs[0] if statement.inputs else None
        if statement.output in main:
            if not free("x", index):
                kept = holder["x"]
                target = fresh(kept, index)
                statement.renames.append(Rename(target, "x"))
                holder[target] = kept
                var_of[kept] = target
            out = "x"
        elif first is not None and var_of[first] != "x" and free(var_of[first], index):
            out = var_of[first]
        else:
            out = fresh(statement.output, index)
        holder[out] = statement.output
        var_of[statement.output] = out
        statement.item.output = out
    return var_of


def _with_renames(statements: list[_Statement]) -> list[Any]:
    body: list[Any] = []
    for statement in statements:
        body.extend(statement.renames)
        body.append(statement.item)
    return body


# --- spec parameters that only change values -------------------------------------------


def _alternative(decl: Any, value: Any) -> Any:
    """Another valid value of a parameter, to see what it changes; None: none to try."""
    if decl.choices and len(decl.choices) > 1:
        return next(c for c in decl.choices if c != value)
    if decl.type == "int" and not isinstance(value, bool) and isinstance(value, int):
        if decl.max is None or value + 1 <= decl.max:
            return value + 1
        if decl.min is None or value - 1 >= decl.min:
            return value - 1
    return None


Position = tuple[str, int, str]  # node, layer call, keyword argument


def _value_params(
    analysed: AnalysedGraph,
    printer: Printer,
    spec: Any,
    spec_path: str,
    overrides: Sequence[str],
) -> tuple[dict[Position, str], dict[str, Any]]:
    """Spec parameters that only change argument values, found by compiling the spec with
    another value: the same nodes and layers, and every changed argument equal to the
    parameter itself. They become keyword arguments of the generated model (only where
    they are used outside blocks); any other parameter is resolved."""
    from xgraph.spec.compile import compile_source
    from xgraph.spec.params import parse_overrides

    def load(path: str, given: list[str]) -> AnalysedGraph:
        return compile_source(load_yaml(path), parse_overrides(given))

    def lowered(graph: AnalysedGraph) -> dict[str, list[LayerCall]]:
        return {node.name: printer.lower(graph, node) for node in graph.graph.nodes}

    base = lowered(analysed)
    positions: dict[Position, str] = {}
    defaults: dict[str, Any] = {}
    for name, decl in spec.params.items():
        value = analysed.params.get(name)
        other = _alternative(decl, value)
        if other is None or name in printer.RESERVED or keyword.iskeyword(name):
            continue
        try:
            variant = lowered(load(spec_path, [*overrides, f"{name}={python_literal(other)}"]))
        except SpecError:
            continue
        found = _changed(analysed, printer, base, variant, value, other)
        if found:
            positions.update(dict.fromkeys(found, name))
            defaults[name] = value
    return positions, defaults


def _changed(
    analysed: AnalysedGraph,
    printer: Printer,
    base: dict[str, list[LayerCall]],
    variant: dict[str, list[LayerCall]],
    value: Any,
    other: Any,
) -> list[Position] | None:
    if list(base) != list(variant):
        return None
    found = []
    for node, calls in base.items():
        others = variant[node]
        if len(calls) != len(others):
            return None
        for index, (call, changed) in enumerate(zip(calls, others, strict=True)):
            if (call.module, call.cls, list(call.kwargs)) != (
                changed.module,
                changed.cls,
                list(changed.kwargs),
            ):
                return None
            for key, before in call.kwargs.items():
                after = changed.kwargs[key]
                if python_literal(before) == python_literal(after):
                    continue
                if (
                    python_literal(before) != python_literal(value)
                    or python_literal(after) != python_literal(other)
                    or key in printer.structural(call)
                    or analysed.graph[node].block
                ):
                    return None
                found.append((node, index, key))
    return found


# --- the program ------------------------------------------------------------------------


def _program(
    analysed: AnalysedGraph,
    printer: Printer,
    spec: Any,
    spec_path: str,
    overrides: Sequence[str],
) -> Program:
    graph = analysed.graph
    definitions = _block_definitions(spec, analysed, spec_path)
    value_params, param_defaults = _value_params(analysed, printer, spec, spec_path, overrides)
    order = [node.name for node in graph.nodes]
    position = {name: i for i, name in enumerate(order)}

    # Units in topological order: a node, or a whole (contiguous) top-level block instance.
    units: list[tuple[str, list[Node]]] = []
    members: dict[str, list[Node]] = {}
    for node in graph.nodes:
        if node.op != "input" and node.block:
            members.setdefault(node.block[0], []).append(node)
    emitted: set[str] = set()
    for node in graph.nodes:
        if node.op == "input":
            continue
        if node.block and node.block[0] in members:
            instance = node.block[0]
            nodes = members[instance]
            span = [position[n.name] for n in nodes]
            if span == list(range(span[0], span[0] + len(span))):
                if instance not in emitted:
                    emitted.add(instance)
                    units.append((instance, nodes))
                continue
        units.append(("", [node]))

    instances = {
        name: found
        for name, nodes in units
        if name and (found := _instance(analysed, printer, name, nodes)) is not None
    }
    groups: dict[tuple, list[_Instance]] = {}
    for inst in instances.values():
        groups.setdefault((definitions.get(inst.name, "block"), inst.skeleton), []).append(inst)
    taken = {
        "forward",
        identifier(spec.name, "model"),
        *printer.RESERVED,
        *printer.TAKEN,
        *(node.name for node in graph.nodes),
    }
    call_of: dict[str, tuple[Function, dict[str, Any]]] = {}
    functions = []
    for (block, _), group in groups.items():
        if len(group) < 2:
            continue
        function, args = _function(group, block, taken, printer)
        functions.append(function)
        for inst, arguments in zip(group, args, strict=True):
            call_of[inst.name] = (function, arguments)

    statements: list[_Statement] = []
    for name, nodes in units:
        if name in call_of:
            function, arguments = call_of[name]
            call = BlockCall(function, name, arguments)
            statements.append(_Statement(call, [instances[name].input], nodes[-1].name))
            continue
        if name:
            statements.append(_Statement(Comment(name), [], ""))
        for node in nodes:
            local = (
                node.name[len(name) + 1 :]
                if name and node.name.startswith(f"{name}_")
                else node.name
            )
            calls = [
                LayerCall(
                    call.module,
                    call.cls,
                    {
                        key: Code(value_params[(node.name, index, key)])
                        if (node.name, index, key) in value_params
                        else value
                        for key, value in call.kwargs.items()
                    },
                )
                for index, call in enumerate(printer.lower(analysed, node))
            ]
            step = LayerStep(
                node,
                node.name,
                local,
                calls,
                tuple(len(s) for s in analysed.input_shape_of(node)),
            )
            statements.append(_Statement(step, list(node.inputs), node.name))
    inputs = [
        LayerStep(graph[name], name, name, printer.lower(analysed, graph[name]), ())
        for name in graph.inputs
    ]

    def clear_of(name: str, reserved: set[str]) -> str:
        """`name`, with '_' appended while it would shadow a module or a function."""
        while name in reserved:
            name = f"{name}_"
        return name

    names_in_use = {*printer.RESERVED, *(f.name for f in functions)}
    scope = {
        name: (
            printer.INPUT_VAR
            if len(inputs) == 1
            else clear_of(identifier(name, "input"), names_in_use)
        )
        for name in graph.inputs
    }
    for step in inputs:
        step.output = scope[step.node.name]
    real = [s for s in statements if not isinstance(s.item, Comment)]
    var_of = _allocate(
        real,
        scope,
        [*graph.outputs, *(graph.inputs if printer.KEEP_INPUTS else ())],
        set(printer.RESERVED) | {f.name for f in functions},
        "shortcut",
    )
    body = _loops(_with_renames(statements))
    return Program(
        spec_name=spec.name,
        class_name=class_name(spec.name),
        function_name=clear_of(identifier(spec.name, "model"), names_in_use),
        description=" ".join((spec.description or "").split()),
        header=_header(spec_path, analysed),
        inputs=inputs,
        body=body,
        outputs=[var_of[name] for name in graph.outputs],
        functions=functions,
        analysed=analysed,
        params=param_defaults,
    )


def _header(spec_path: str, analysed: AnalysedGraph) -> list[str]:
    """Comment lines (without '# ') saying where the code came from."""
    params = ", ".join(f"{k}={python_literal(v)}" for k, v in analysed.params.items())
    text = (
        f"Generated by xgraph {__version__} from {spec_path} (spec '{analysed.name}'), "
        f"parameters: {params or 'none'}."
    )
    lines = textwrap.wrap(text, 96, break_long_words=False, break_on_hyphens=False)
    return [printable(line) for line in lines]


_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def _loops(body: list[Any]) -> list[Any]:
    """Runs of calls to one function, on instances `<prefix><i>` with consecutive i and
    otherwise equal arguments, each from and to the same variable, as one `for` loop."""
    result: list[Any] = []
    index = 0
    while index < len(body):
        item = body[index]
        run = [item]
        if isinstance(item, BlockCall) and (m := _NUMBERED.match(str(item.instance))):
            prefix, start = m.group(1), int(m.group(2))
            while index + len(run) < len(body):
                nxt = body[index + len(run)]
                if not (
                    isinstance(nxt, BlockCall)
                    and nxt.function is item.function
                    and nxt.instance == f"{prefix}{start + len(run)}"
                    and nxt.inputs == item.inputs == [item.output] == [nxt.output]
                    and python_literal(nxt.args) == python_literal(item.args)
                ):
                    break
                run.append(nxt)
            if len(run) >= 2 and "{" not in prefix and "}" not in prefix:
                text = python_literal(prefix)[1:-1]
                call = BlockCall(
                    item.function,
                    Code(f'f"{text}{{i}}"'),
                    item.args,
                    item.inputs,
                    item.output,
                )
                result.append(Loop("i", start, start + len(run), [call]))
                index += len(run)
                continue
        result.append(item)
        index += 1
    return result


# --- printing helpers shared by the backends ------------------------------------------


def _signature(cls: Any) -> list[inspect.Parameter]:
    return [
        p
        for p in inspect.signature(cls).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in ("device", "dtype")
    ]


def plain(key: str, value: Any) -> Any:
    """(3, 3) as 3 for the window arguments both frameworks take as an int or a pair; a
    pair of pairs (((0, 1), (0, 1)): top/bottom and left/right amounts) stays as it is."""
    if (
        key in PAIRS
        and isinstance(value, tuple | list)
        and len(set(value)) == 1
        and all(isinstance(item, int) and not isinstance(item, bool) for item in value)
    ):
        return value[0]
    return value


def _is_default(param: inspect.Parameter, value: Any) -> bool:
    if param.default is param.empty or isinstance(value, Code):
        return False
    if value == "linear" and param.name == "activation" and param.default is None:
        return True  # Keras's activation=None is the identity, as "linear" is
    return python_literal(value) == python_literal(plain(param.name, param.default))


def arguments(cls: Any, kwargs: dict[str, Any]) -> list[str]:
    """Required arguments by position, the others by keyword where they differ from the
    class's default."""
    args = []
    positional = True
    params = {p.name: p for p in _signature(cls)}
    for name, param in params.items():
        if name not in kwargs:
            positional = positional and param.default is not param.empty
            continue
        value = plain(name, kwargs[name])
        if _is_default(param, value):
            positional = False
            continue
        if positional and param.default is param.empty:
            args.append(python_literal(value))
        else:
            positional = False
            args.append(f"{name}={python_literal(value)}")
    args.extend(
        f"{key}={python_literal(plain(key, value))}"
        for key, value in kwargs.items()
        if key not in params
    )
    return args


Arg = str | tuple[str, list[Any]]  # source text, or a nested call (head, arguments)


def _flat(arg: Arg) -> str:
    return arg if isinstance(arg, str) else f"{arg[0]}({', '.join(map(_flat, arg[1]))})"


def format_call(indent: int, head: str, args: Sequence[Arg], tail: str = "") -> list[str]:
    """`head(args)tail` as ruff formats it at `indent` for lines of at most LINE columns:
    on one line, else the arguments on one line of their own, else one per line."""
    pad = " " * indent
    flat = ", ".join(map(_flat, args))
    if len(one := f"{pad}{head}({flat}){tail}") <= LINE:
        return [one]
    if tail.startswith("(") and tail.endswith(")") and len(f"{pad}{head}({flat})(") <= LINE:
        return [f"{pad}{head}({flat})(", f"{pad}    {tail[1:-1]}", f"{pad})"]  # `(x)` split
    if len(inner := " " * (indent + 4) + flat) <= LINE:
        return [f"{pad}{head}(", inner, f"{pad}){tail}"]
    lines = [f"{pad}{head}("]
    for arg in args:
        if isinstance(arg, tuple) and len(" " * (indent + 4) + _flat(arg) + ",") > LINE:
            lines += format_call(indent + 4, arg[0], arg[1], ",")
        else:
            lines.append(" " * (indent + 4) + _flat(arg) + ",")
    return [*lines, f"{pad}){tail}"]
