"""Torch code generation: the core's program (`xgraph.codegen`) printed as one `nn.Module`.

Every layer comes from the same `LayerCall` the builder instantiates, printed as the plainest
torch that computes the same: `nn.Conv2d` where no asymmetric padding is needed, activations
and parameter-free steps (add, global pooling, flatten) as functions in `forward`, and the
few classes torch lacks (templates/helpers.py) copied into the module only when used, with
the parameter names of `xgraph_torch.layers`, so state dict keys equal the build's.

Blocks shared by several instances become two methods: `add_<block>(name, ...)` registers
the instance's layers under their node names (`add_module`), `<block>(x, name)` runs them, so
the state dict stays flat, as the build's is.
"""

from __future__ import annotations

import ast
import inspect
import keyword
import re
from functools import cache
from typing import Any

import jinja2
from torch import nn

from xgraph.backend.lowering import LayerCall
from xgraph.backend.names import node_name_error
from xgraph.backend.rules import op_rules
from xgraph.codegen import (
    LINE,
    BlockCall,
    Code,
    Comment,
    LayerStep,
    Loop,
    Program,
    Rename,
    arguments,
    docstring_lines,
    docstring_text,
    format_call,
    plain,
    python_literal,
)
from xgraph.errors import SpecError
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph_torch.names import reserved_reason
from xgraph_torch.rules.activation import ACTIVATION_LAYERS
from xgraph_torch.rules.base import LAYERS, NN

RESERVED = frozenset({"torch", "nn", "F", "self", "x", "name", "i", "super", "float", "getattr"})
TAKEN = frozenset(dir(nn.Module))  # a block named `module` must not become `add_module`
FUNCTION_PREFIXES = ("", "add_")  # `add_<block>` registers its layers, `<block>` runs them
INPUT_VAR = "x"
KEEP_INPUTS = False

# Attributes the generated class has besides nn.Module's own.
_CLASS_ATTRIBUTES = {"forward"}

_FUNCTIONAL = {
    "Identity": "{x}",
    "ReLU": "F.relu({x})",
    "ReLU6": "F.relu6({x})",
    "Sigmoid": "torch.sigmoid({x})",
    "Hardsigmoid": "F.hardsigmoid({x})",
    "Tanh": "torch.tanh({x})",
    "Softmax": "torch.softmax({x}, dim={dim})",
    "SiLU": "F.silu({x})",
    "Hardswish": "F.hardswish({x})",
}
_PADDED = {"Conv2d": "PaddedConv2d", "MaxPool2d": "PaddedMaxPool2d"}
_NO_MODULE = {"GlobalPool", "FlattenChannelsLast", "Add", "Concat"}
_NO_PAD = (0, 0, 0, 0)


def check_node_name(node: Node) -> None:
    """A node name becomes an attribute of the generated nn.Module, as of the built one: the
    same rule (xgraph_torch.names), which `validate` applies already."""
    reason = reserved_reason(node.name)
    if reason is not None:
        raise node_name_error(node, "torch", reason)


def plain_attribute(name: str) -> bool:
    """Whether `self.<name>` names the attribute `name`: not for a keyword (`self.class`),
    a name Python mangles in a class (`self.__x` is `self._Model__x`), or a non-ASCII one
    (Python NFKC-normalises it). Those are registered and read by their string instead."""
    if not name.isascii() or keyword.iskeyword(name):
        return False
    return not (name.startswith("__") and not name.endswith("__"))


def lower(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    """The build's lowering, with `pad` made explicit where a class takes one."""
    call = op_rules("torch")[node.op].lower(analysed, node)
    if call is None:
        return []
    if call.module == LAYERS and call.cls in {
        "Conv2d",
        "SeparableConv2d",
        "MaxPool2d",
        "AvgPool2d",
    }:
        call = LayerCall(
            call.module, call.cls, {**call.kwargs, "pad": call.kwargs.get("pad", _NO_PAD)}
        )
    return [call]


def structural(call: LayerCall) -> frozenset[str]:
    """Arguments that change the printed code, not only a value in it."""
    if call.module == LAYERS and call.cls in _NO_MODULE:
        return frozenset(call.kwargs)
    return frozenset({"activation"})


# --- helpers and signatures ------------------------------------------------------------


def _helpers_text() -> str:
    """The source of templates/helpers.py."""
    loader = _environment().loader
    assert loader is not None  # _environment gives it its PackageLoader
    return loader.get_source(_environment(), "helpers.py")[0]


@cache
def _helper_sources() -> dict[str, str]:
    text = _helpers_text()
    tree = ast.parse(text)
    sources = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            source = ast.get_source_segment(text, node)
            assert source is not None  # a node parsed from `text` has its position in it
            sources[node.name] = source
    return sources


@cache
def _helper_classes() -> dict[str, type]:
    namespace: dict[str, Any] = {}
    text = _helpers_text()
    exec(compile(text, "helpers.py", "exec"), namespace)
    return {name: namespace[name] for name in _helper_sources()}


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("xgraph_torch", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def _plugin_class(call: LayerCall, node: Node) -> str:
    """A plugin's own torch module, copied into the generated code when its module needs
    nothing but torch and the standard library."""
    import importlib
    import sys

    module = importlib.import_module(call.module)
    text = inspect.getsource(module)
    tree = ast.parse(text)
    for statement in tree.body:
        if isinstance(statement, ast.Import | ast.ImportFrom):
            names = [a.name for a in statement.names] if isinstance(statement, ast.Import) else []
            base = statement.module if isinstance(statement, ast.ImportFrom) else None
            for full in [*names, base] if base else names:
                top = (full or "").split(".")[0]
                if top not in ("torch", "__future__") and top not in sys.stdlib_module_names:
                    raise SpecError(
                        f"op '{node.op}' (node '{node.name}') has no code generation for the "
                        f"torch backend: its layer {call.module}.{call.cls} needs '{full}'",
                        node.location,
                    )
    for statement in tree.body:
        if isinstance(statement, ast.ClassDef) and statement.name == call.cls:
            statement.decorator_list = []
            return ast.get_source_segment(text, statement) or ""
    raise SpecError(
        f"op '{node.op}' (node '{node.name}') has no code generation for the torch backend: "
        f"class {call.cls} not found in {call.module}",
        node.location,
    )


# --- printing -------------------------------------------------------------------------


class _Printer:
    def __init__(self, program: Program) -> None:
        self.program = program
        self.helpers: set[str] = set()
        self.plugins: dict[str, str] = {}

    def attribute(self, step: LayerStep) -> str:
        if isinstance(step.name, Code):
            return f"getattr(self, {step.name.text})"
        if not plain_attribute(step.name):
            return f"getattr(self, {python_literal(step.name)})"
        return f"self.{step.name}"

    def module(self, step: LayerStep, call: LayerCall) -> tuple[str, list[str]] | None:
        """The class expression and arguments that make the node's module, if it has one."""
        kwargs = {k: v for k, v in call.kwargs.items() if k != "activation"}
        if call.module == NN:
            if step.node.op == "activation" and call.cls in _FUNCTIONAL:
                return None
            return f"nn.{call.cls}", arguments(getattr(nn, call.cls), kwargs)
        if call.module != LAYERS:
            self.plugins.setdefault(call.cls, _plugin_class(call, step.node))
            cls = getattr(__import__(call.module, fromlist=[call.cls]), call.cls)
            return call.cls, arguments(cls, kwargs)
        if call.cls in _NO_MODULE:
            return None
        pad = kwargs.pop("pad", _NO_PAD)
        padded = isinstance(pad, Code) or any(pad)
        if call.cls in _PADDED:
            base = getattr(nn, call.cls)
            if padded:
                self.helpers.add(_PADDED[call.cls])
                return _PADDED[call.cls], [*arguments(base, kwargs), f"pad={python_literal(pad)}"]
            return f"nn.{call.cls}", arguments(base, kwargs)
        if call.cls == "AvgPool2d" and not padded:
            return "nn.AvgPool2d", arguments(nn.AvgPool2d, kwargs)
        if call.cls == "Linear":
            return "nn.Linear", arguments(nn.Linear, kwargs)
        self.helpers.add(call.cls)
        if "pad" in call.kwargs:
            kwargs["pad"] = pad
        return call.cls, arguments(_helper_classes()[call.cls], kwargs)

    def forward(self, step: LayerStep, call: LayerCall) -> str:
        """The expression that runs the node on its input variables."""
        x = step.inputs[0] if step.inputs else ""
        kwargs = call.kwargs
        if call.module == NN and step.node.op == "activation" and call.cls in _FUNCTIONAL:
            return _FUNCTIONAL[call.cls].format(x=x, **call.kwargs)
        if call.module == LAYERS and call.cls in _NO_MODULE:
            if call.cls == "Add":
                return " + ".join(step.inputs)
            if call.cls == "Concat":
                return f"torch.cat([{', '.join(step.inputs)}], dim={kwargs['dim']})"
            if call.cls == "FlattenChannelsLast":
                return f"{x}.movedim(1, -1).flatten(1)"
            reduce = "mean" if kwargs["mode"] == "avg" else "amax"
            keep = ", keepdim=True" if kwargs["keepdims"] else ""
            return f"{x}.{reduce}((2, 3){keep})"
        inputs = ", ".join(step.inputs)
        if call.cls == "Linear" and step.input_ranks and step.input_ranks[0] > 1:
            text = f"{self.attribute(step)}({x}.movedim(1, -1)).movedim(-1, 1)"
        else:
            text = f"{self.attribute(step)}({inputs})"
        activation = kwargs.get("activation", "linear")
        if activation != "linear":
            fused = ACTIVATION_LAYERS[activation]
            text = _FUNCTIONAL[fused.cls].format(x=text, **fused.kwargs)
        return text

    def init_lines(self, items: list[Any], indent: int) -> list[str]:
        lines: list[str] = []
        pad = " " * indent
        for item in items:
            if isinstance(item, Comment):
                lines.append(f"{pad}# {item.text}")
            elif isinstance(item, LayerStep):
                for call in item.calls:
                    made = self.module(item, call)
                    if made is None:
                        continue
                    cls, args = made
                    if isinstance(item.name, Code) or not plain_attribute(item.name):
                        name = (
                            item.name.text
                            if isinstance(item.name, Code)
                            else python_literal(item.name)
                        )
                        lines += format_call(indent, "self.add_module", [name, (cls, args)])
                    else:
                        lines += format_call(indent, f"self.{item.name} = {cls}", args)
            elif isinstance(item, BlockCall):
                args = [python_literal(item.instance)] + [
                    f"{k}={python_literal(plain(k, v))}" for k, v in item.args.items()
                ]
                lines += format_call(indent, f"self.add_{item.function.name}", args)
            elif isinstance(item, Loop):
                lines.append(f"{pad}for {item.var} in range({item.start}, {item.stop}):")
                lines += self.init_lines(item.body, indent + 4)
        return lines

    def forward_lines(self, items: list[Any], indent: int) -> list[str]:
        lines: list[str] = []
        pad = " " * indent
        for item in items:
            if isinstance(item, Comment):
                lines.append(f"{pad}# {item.text}")
            elif isinstance(item, Rename):
                lines.append(f"{pad}{item.target} = {item.source}")
            elif isinstance(item, LayerStep):
                for call in item.calls:
                    lines.append(f"{pad}{item.output} = {self.forward(item, call)}")
            elif isinstance(item, BlockCall):
                args = [*item.inputs, python_literal(item.instance)]
                lines += format_call(indent, f"{item.output} = self.{item.function.name}", args)
            elif isinstance(item, Loop):
                lines.append(f"{pad}for {item.var} in range({item.start}, {item.stop}):")
                lines += self.forward_lines(item.body, indent + 4)
        return lines


def render(program: Program) -> str:
    printer = _Printer(program)
    methods = []
    for function in program.functions:
        init = printer.init_lines(function.body, 8)
        forward = printer.forward_lines(function.body, 8)
        methods.append(
            {
                "add_head": format_call(
                    4,
                    f"def add_{function.name}",
                    [
                        "self",
                        "name: str",
                        *(f"{p}: {function.param_types[p]}" for p in function.params),
                    ],
                    " -> None:",
                ),
                "add_body": init,
                "name": function.name,
                "block": docstring_text(function.block),
                "body": forward,
                "output": function.output,
            }
        )
    init = printer.init_lines(program.body, 8)
    forward = printer.forward_lines(program.body, 8)
    inputs = [step.output for step in program.inputs]
    helpers = [_helper_sources()[name] for name in _helper_sources() if name in printer.helpers]
    helpers += list(printer.plugins.values())
    # The model's class must not hide a class or module the generated code uses.
    class_name = program.class_name
    while class_name in {*_helper_sources(), *printer.plugins, "F"}:
        class_name += "_"
    context = dict(
        header=program.header,
        docstring=docstring_lines(program.description, LINE - 4),
        helpers=helpers,
        class_name=class_name,
        spec_name=docstring_text(program.spec_name),
        init=init,
        forward_head=format_call(
            4,
            "def forward",
            ["self", *(f"{name}: torch.Tensor" for name in inputs)],
            " -> torch.Tensor:" if len(program.outputs) == 1 else " -> tuple[torch.Tensor, ...]:",
        ),
        forward=forward,
        outputs=", ".join(program.outputs),
        methods=methods,
        init_head=format_call(
            4,
            "def __init__",
            [
                "self",
                *(
                    f"{k}: {type(v).__name__} = {python_literal(v)}"
                    for k, v in program.params.items()
                ),
            ],
            " -> None:",
        ),
    )
    template = _environment().get_template("module.py.j2")
    return template.render(context, imports=_imports(template.render(context, imports="")))


def _imports(text: str) -> str:
    """The imports `text` uses: ruff refuses unused ones."""
    imports = []
    if re.search(r"\btorch\.", text):
        imports.append("import torch")
    if re.search(r"\bF\.", text):
        imports.append("import torch.nn.functional as F")
    imports.append("from torch import nn")
    return "\n".join(imports)
