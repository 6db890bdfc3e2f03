"""Torch code generation: the core's program (`xgraph.codegen`) printed as `nn.Module`s.

As timm writes its models: one `nn.Module` class per block definition, its layers
attributes named within the block (`self.sepconv1`); the model's class holds the other
layers under their node names, an instance of a block class per block instance
(`self.block3`) and one `nn.Sequential` per run of instances (`self.block5_12`). How one
layer prints is codegen_layers' business, the lines of `__init__` and `forward`
codegen_print's; the layers.py classes used are copied in from the build's own source
(layer_source).

The state dict follows that nesting (`block5_12.0.sepconv1.depthwise.weight`); the build's
is flat (`block5_sepconv1.depthwise.weight`): `module_paths` and `state_dict_keys` map one
to the other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from functools import cache

import jinja2
from torch import nn

from xgraph.backend.lowering import LayerCall
from xgraph.backend.names import node_name_error
from xgraph.backend.rules import op_rules
from xgraph.codegen import (
    BlockDef,
    LayerStep,
    Loop,
    Program,
    Statement,
    block_docstring,
    class_name,
    clear_of,
    docstring_lines,
    docstring_text,
    program,
    python_literal,
    verbatim,
)
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph_torch.codegen_init import INIT_FUNCTION, init_call, init_source
from xgraph_torch.codegen_layers import FUNCTIONAL, NO_MODULE, LayerPrinter
from xgraph_torch.codegen_print import StatementPrinter
from xgraph_torch.layer_source import layer_names, layer_source
from xgraph_torch.names import reserved_reason
from xgraph_torch.rules.base import LAYERS, NN

RESERVED = frozenset(
    {"torch", "nn", "F", "self", "x", "name", "i", "block", "super", "float", "getattr", "range"}
)
TAKEN = frozenset(dir(nn.Module))  # no layer attribute hides one of nn.Module's own
INPUT_VAR = "x"
KEEP_INPUTS = False
LAYERS_LINE_LENGTH = 100  # what xgraph_torch.layers (the copied source) is formatted for
_IMPORTS = {  # what the generated module imports, when its code uses the name
    "torch": "import torch",
    "F": "import torch.nn.functional as F",
    "nn": "from torch import nn",
}


def check_node_name(node: Node) -> None:
    """A node name becomes an attribute of the generated nn.Module, as of the built one: the
    same rule (xgraph_torch.names), which `validate` applies already."""
    reason = reserved_reason(node.name)
    if reason is not None:
        raise node_name_error(node, "torch", reason)


def lower(analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
    """The build's own lowering: no module (an input) is no call."""
    made = op_rules("torch")[node.op].lower(analysed, node)
    if made is None:
        return []
    return list(made) if isinstance(made, list | tuple) else [made]


def structural(call: LayerCall) -> frozenset[str]:
    """Arguments printed in `forward`, where a block class's `__init__` parameters are out of
    reach: the fused activation, an activation function's and a parameter-free step's."""
    if (call.module == LAYERS and call.cls in NO_MODULE) or (
        call.module == NN and call.cls in FUNCTIONAL
    ):
        return frozenset(call.kwargs)
    return frozenset({"activation"})


def block_name(block: str, taken: set[str]) -> str:
    """A block definition is one class, clear of the layer classes it may be copied beside."""
    name = clear_of(class_name(block), {*taken, *layer_names(), *_IMPORTS})
    taken.add(name)
    return name


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


def _statements(body: Iterable[Statement]) -> Iterator[Statement]:
    """Every statement, those inside loops too."""
    for item in body:
        yield item
        if isinstance(item, Loop):
            yield from _statements(item.body)


def _plugin_classes(made: Program) -> set[str]:
    """The plugin layer classes the code will copy in (names it must leave to them)."""
    bodies = [made.body, *(block.body for block in made.blocks)]
    return {
        call.cls
        for body in bodies
        for item in _statements(body)
        if isinstance(item, LayerStep)
        for call in item.calls
        if call.module not in (NN, LAYERS)
    }


def _statement_printer(made: Program) -> StatementPrinter:
    """A printer with every attribute, module path and block class named."""
    printer = StatementPrinter(LayerPrinter(), made.line_length, TAKEN)
    printer.name_model(made.body)
    plugins = _plugin_classes(made)
    for block in made.blocks:
        printer.name_block(block)
        printer.classes[block.name] = clear_of(block.name, plugins)
    return printer


def module_paths(analysed: AnalysedGraph) -> dict[str, str]:
    """Each node's module path in the generated module (`block5_sepconv1` ->
    `block5_12.0.sepconv1`): where its state dict keys start."""
    return dict(_statement_printer(program(analysed, "torch")).paths)


def state_dict_keys(analysed: AnalysedGraph, keys: Iterable[str]) -> dict[str, str]:
    """The build's state dict keys (`<node>.<parameter>`) as the generated module's."""
    paths = module_paths(analysed)
    moved = {}
    for key in keys:
        node, dot, rest = key.partition(".")
        moved[key] = f"{paths.get(node, node)}{dot}{rest}"
    return moved


def _block(printer: StatementPrinter, block: BlockDef) -> dict[str, object]:
    params = ["self", *(f"{p.name}: {p.annotation}" for p in block.params)]
    inputs = [f"{name}: torch.Tensor" for name in block.inputs]
    return {
        "name": printer.classes[block.name],
        "doc": block_docstring(
            block.block, block.instances, "as attributes named within it", printer.width
        ),
        "init_head": printer.call(4, "def __init__", params, " -> None:"),
        "forward_head": printer.call(4, "def forward", ["self", *inputs], " -> torch.Tensor:"),
        "init": printer.init_lines(block.body, 8),
        "forward": printer.forward_lines(block.body, 8),
        "output": block.output,
    }


def _helpers(layers: LayerPrinter, width: int) -> list[str]:
    """The layers.py definitions and plugin classes the code uses, and the spec's
    initialisation (codegen_init), each fenced off from the formatter where ruff at
    `width` would change it."""
    sources = layer_source(layers.layers).split("\n\n\n") if layers.layers else []
    sources += layers.plugins.values()
    sources.append(init_source())
    return [verbatim(source.strip("\n"), width, LAYERS_LINE_LENGTH) for source in sources]


def render(made: Program) -> str:
    printer = _statement_printer(made)
    width = made.line_length
    blocks = [_block(printer, block) for block in made.blocks]
    init = printer.init_lines(made.body, 8)
    forward = printer.forward_lines(made.body, 8)
    helpers = _helpers(printer.layers, width)
    # The model's class must not hide a class or module the generated code uses.
    used = {
        *printer.classes.values(),
        *printer.layers.plugins,
        *layer_names(),
        *_IMPORTS,
        INIT_FUNCTION,
    }
    inputs = [step.output for step in made.inputs]
    returns = "torch.Tensor" if len(made.outputs) == 1 else "tuple[torch.Tensor, ...]"
    defaults = [f"{p.name}: {p.annotation} = {python_literal(p.default)}" for p in made.params]
    context = dict(
        header=made.header,
        docstring=docstring_lines(made.description, width - 4),
        helpers=helpers,
        tight=bool(helpers) and not _defines(helpers[0]),
        blocks=blocks,
        class_name=clear_of(made.class_name, used),
        spec_name=docstring_text(made.spec_name),
        init_head=printer.call(4, "def __init__", ["self", *defaults], " -> None:"),
        init=init,
        init_call=init_call(made.analysed.graph.initializer),
        forward_head=printer.call(
            4, "def forward", ["self", *(f"{x}: torch.Tensor" for x in inputs)], f" -> {returns}:"
        ),
        forward=forward,
        outputs=", ".join(made.outputs),
    )
    template = _environment().get_template("module.py.j2")
    return template.render(context, imports=_imports(template.render(context, imports=[])))


def _defines(source: str) -> bool:
    """Whether `source` starts with a function or class (after its `# fmt: off`): ruff
    wants two blank lines after the imports before one, one before anything else."""
    code = [line for line in source.splitlines() if not line.startswith("#")]
    return bool(code) and code[0].startswith(("def ", "class ", "@", "async def "))


def _imports(text: str) -> list[str]:
    """The imports the code in `text` uses (names, not words in docstrings): ruff refuses
    unused ones."""
    names = {node.id for node in ast.walk(ast.parse(text)) if isinstance(node, ast.Name)}
    return [line for name, line in _IMPORTS.items() if name in names]
