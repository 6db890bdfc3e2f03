"""Keras code generation: the core's program (`xgraph.codegen`) printed as a function that
builds a functional `keras.Model`, in the style of keras.applications.

Every layer is printed from the same `LayerCall` the builder instantiates, named after its
node, so layer and weight names, and the layer order `.weights.h5` files rely on, equal the
build's. Blocks shared by several instances become functions `<block>(x, name, ...)`.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import sys
from collections.abc import Sequence
from functools import cache
from typing import Any

import jinja2

from xgraph.backend.lowering import LayerCall
from xgraph.backend.rules import op_rules
from xgraph.codegen import (
    BlockCall,
    Code,
    Comment,
    LayerStep,
    Loop,
    Program,
    Rename,
    Statement,
    arguments,
    assign_call,
    block_docstring,
    clear_of,
    docstring_lines,
    docstring_text,
    format_call,
    identifier,
    plain,
    python_literal,
    verbatim,
)
from xgraph.errors import SpecError
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.ops.initializers import DEFAULT_INITIALIZER
from xgraph_keras.framework import keras
from xgraph_keras.layers import ACTIVATION_FUNCTIONS
from xgraph_keras.rules.base import LAYERS

RESERVED = frozenset({"keras", "layers", "x", "inputs", "name", "i"})
TAKEN: frozenset[str] = frozenset()
INPUT_VAR = "inputs"
KEEP_INPUTS = True  # keras.Model(inputs, ...) at the end


def check_node_name(node: Node) -> None:
    """Node names are layer names, strings: any identifier will do."""


# Where a spec's `initializer:` is not Keras's default, the layers with kernels are given it,
# so the generated model starts as `xgraph train` does (Keras's fans are xgraph's).
_INITIALIZER_ARGUMENTS = {
    "Conv2D": ("kernel_initializer",),
    "Dense": ("kernel_initializer",),
    "DepthwiseConv2D": ("depthwise_initializer",),
    "SeparableConv2D": ("depthwise_initializer", "pointwise_initializer"),
}


def lower(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    calls = [_function_names(call) for call in op_rules("keras")[node.op].lower(analysed, node)]
    scheme = analysed.graph.initializer
    if scheme == DEFAULT_INITIALIZER:
        return calls
    return [_initialised(call, scheme) for call in calls]


def _function_names(call: LayerCall) -> LayerCall:
    """xgraph's activation functions (gelu_tanh) as their names: the code carries a copy."""
    functions = {id(function): name for name, function in ACTIVATION_FUNCTIONS.items()}
    named = {
        key: Code(functions[id(value)])
        for key, value in call.kwargs.items()
        if id(value) in functions
    }
    return dataclasses.replace(call, kwargs={**call.kwargs, **named}) if named else call


def _initialised(call: LayerCall, scheme: str) -> LayerCall:
    names = _INITIALIZER_ARGUMENTS.get(call.cls, ()) if call.module == LAYERS else ()
    if not names:
        return call
    return dataclasses.replace(call, kwargs={**call.kwargs, **dict.fromkeys(names, scheme)})


def structural(call: LayerCall) -> frozenset[str]:
    return frozenset()


def block_name(block: str, taken: set[str]) -> str:
    """A block definition is one function, named after the block."""
    name = clear_of(identifier(block, "block"), taken)
    taken.add(name)
    return name


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("xgraph_keras", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


# Imports a plugin's layer module may have, and what they become in the generated module.
# (module of `from MODULE import NAME`, None for `import NAME`; NAME) -> the import to write.
_ALIASES: dict[tuple[str | None, str], str] = {("xgraph_keras.framework", "keras"): "import keras"}


def _plugin_class(call: LayerCall, node: Node) -> tuple[str, list[str]]:
    """A plugin's own Keras layer (or xgraph's activation function), copied into the
    generated code (without decorators) when its module needs nothing but keras and the
    standard library; and the imports it needs."""
    module = importlib.import_module(call.module)
    text = inspect.getsource(module)
    tree = ast.parse(text)
    imports = []
    for statement in tree.body:
        if isinstance(statement, ast.ImportFrom) and statement.module == "__future__":
            continue
        if isinstance(statement, ast.Import | ast.ImportFrom):
            base = statement.module if isinstance(statement, ast.ImportFrom) else None
            for alias in statement.names:
                if (base, alias.name) in _ALIASES:
                    imports.append(_ALIASES[(base, alias.name)])
                    continue
                top = (base or alias.name).split(".")[0]
                if top != "keras" and top not in sys.stdlib_module_names:
                    raise SpecError(
                        f"op '{node.op}' (node '{node.name}') has no code generation for the "
                        f"keras backend: its layer {call.module}.{call.cls} needs "
                        f"'{base or alias.name}'",
                        node.location,
                    )
                imports.append(ast.get_source_segment(text, statement) or "")
    for statement in tree.body:
        if isinstance(statement, ast.ClassDef | ast.FunctionDef) and statement.name == call.cls:
            start = statement.lineno
            lines = text.splitlines()[start - 1 : statement.end_lineno]
            return "\n".join(lines), imports
    raise SpecError(
        f"op '{node.op}' (node '{node.name}') has no code generation for the keras backend: "
        f"class {call.cls} not found in {call.module}",
        node.location,
    )


class _Printer:
    def __init__(self, width: int) -> None:
        self.width = width
        self.plugins: dict[str, str] = {}
        self.imports: list[str] = []

    def layer(self, step: LayerStep, call: LayerCall) -> tuple[str, list[Any]]:
        if call.module == "keras.layers":
            cls = getattr(keras.layers, call.cls)
            head = f"layers.{call.cls}"
        elif call.module == "keras":
            cls = getattr(keras, call.cls)
            head = f"keras.{call.cls}"
        else:
            self.copy(call, step)
            cls = getattr(importlib.import_module(call.module), call.cls)
            head = call.cls
        kwargs = {k: plain(k, v) for k, v in call.kwargs.items()}
        for value in kwargs.values():
            if isinstance(value, Code) and value.text in ACTIVATION_FUNCTIONS:
                self.copy(LayerCall(ACTIVATION_FUNCTIONS[value.text].__module__, value.text), step)
        return head, arguments(cls, kwargs)

    def copy(self, call: LayerCall, step: LayerStep) -> None:
        """Carry a copy of the class or function `call` names, and the imports it needs."""
        if call.cls not in self.plugins:
            source, imports = _plugin_class(call, step.node)
            self.plugins[call.cls] = source
            self.imports += [i for i in imports if i not in self.imports]

    def lines(self, items: Sequence[Statement], indent: int) -> list[str]:
        lines: list[str] = []
        pad = " " * indent
        for item in items:
            if isinstance(item, Comment):
                lines.append(f"{pad}# {item.text}")
            elif isinstance(item, Rename):
                lines.append(f"{pad}{item.target} = {item.source}")
            elif isinstance(item, LayerStep):
                source = item.inputs
                calls = item.calls
                branch = getattr(op_rules("keras")[item.node.op], "branch", None)
                if branch is not None and len(calls) > 1:  # layers on that input alone, inline
                    value = source[branch]
                    for call in calls[:-1]:
                        head, args = self.layer(item, call)
                        value = f"{head}({', '.join(args)})({value})"
                    source = (*source[:branch], value, *source[branch + 1 :])
                    calls = calls[-1:]
                for call in calls:
                    head, args = self.layer(item, call)
                    if call.module == "keras" and call.cls == "Input":
                        lines += self.call(indent, f"{item.output} = {head}", args)
                        continue
                    many = item.node.opdef.max_inputs != 1 and len(source) > 0
                    value = f"[{', '.join(source)}]" if many else ", ".join(source)
                    lines += self.call(indent, f"{item.output} = {head}", args, f"({value})")
                    source = (item.output,)
            elif isinstance(item, BlockCall):
                args = [*item.inputs, python_literal(item.label)] + [
                    f"{k}={python_literal(plain(k, v))}" for k, v in item.args.items()
                ]
                lines += assign_call(
                    indent, item.output, item.carry, item.block.name, args, self.width
                )
            elif isinstance(item, Loop):
                lines.append(f"{pad}for {item.var} in range({item.start}, {item.stop}):")
                lines += self.lines(item.body, indent + 4)
        return lines

    def call(self, indent: int, head: str, args: Sequence[Any], tail: str = "") -> list[str]:
        return format_call(indent, head, args, tail, self.width)


def render(program: Program) -> str:
    printer = _Printer(program.line_length)
    functions = [
        {
            "head": printer.call(
                0, f"def {f.name}", [*f.inputs, "name", *(p.name for p in f.params)], ":"
            ),
            "doc": block_docstring(
                f.block, f.instances, "named after its node names", program.line_length
            ),
            "body": printer.lines(f.body, 4),
            "output": f.output,
        }
        for f in program.blocks
    ]
    body = printer.lines([*program.inputs, *program.body], 4)
    function_name = program.function_name  # not the name of a plugin's layer class it uses
    while function_name in printer.plugins:
        function_name += "_"
    inputs = [step.output for step in program.inputs]
    outputs = program.outputs
    model = printer.call(
        4,
        "return keras.Model",
        [
            inputs[0] if len(inputs) == 1 else f"[{', '.join(inputs)}]",
            outputs[0] if len(outputs) == 1 else f"[{', '.join(outputs)}]",
            f"name={python_literal(program.spec_name)}",
        ],
    )
    imports = sorted({"import keras", *printer.imports} - {"from keras import layers"})
    if any("layers." in line for line in body) or any(
        "layers." in line for f in functions for line in f["body"]
    ):
        imports.append("from keras import layers")
    return (
        _environment()
        .get_template("module.py.j2")
        .render(
            header=program.header,
            docstring=docstring_lines(program.description, program.line_length - 4),
            imports=_sorted_imports(imports),
            helpers=[verbatim(h, program.line_length) for h in printer.plugins.values()],
            functions=functions,
            function_name=function_name,
            spec_name=docstring_text(program.spec_name),
            body=body,
            model=model,
            head=printer.call(
                0,
                f"def {function_name}",
                [f"{p.name}={python_literal(p.default)}" for p in program.params],
                ":",
            ),
        )
    )


def _sorted_imports(imports: list[str]) -> list[str]:
    """As ruff's isort orders them: the standard library first, then keras; plain imports
    before from-imports within each."""

    def key(line: str) -> tuple[int, int, str]:
        words = line.split()
        top = words[1].split(".")[0]
        return (0 if top in sys.stdlib_module_names else 1, words[0] == "from", words[1])

    ordered = sorted(set(imports), key=key)
    result = []
    for index, line in enumerate(ordered):
        if index and key(line)[0] != key(ordered[index - 1])[0]:
            result.append("")
        result.append(line)
    return result
