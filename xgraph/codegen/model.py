"""The program model a backend prints: frozen statements built once (codegen.assemble).

A program is a list of statements (layer steps, block calls, loops over block calls,
renames, comments) over named variables, plus the block definitions the calls use. Nothing
in it is framework-specific: the layers are the backend's own `LayerCall` descriptions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from xgraph.backend.lowering import LayerCall
from xgraph.codegen.source import Code
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node

BLOCK_INPUT = "<input>"  # how a block's statements refer to the instance's input value


def block_input(index: int) -> str:
    """How a block's statements refer to the instance's `index`-th input value from outside
    (NASNet's cells take two: the previous cell's output and the one before it)."""
    return BLOCK_INPUT if index == 0 else f"<input{index}>"


@dataclass(frozen=True)
class LayerStep:
    """One node: its layer calls, the variables it reads and the variable it writes.
    `name` is the node's name, or an f-string (`Code`) inside a block definition;
    `local` is the name inside its block instance (`sepconv1` of `block3_sepconv1`)."""

    node: Node
    name: str | Code
    local: str
    calls: tuple[LayerCall, ...]
    input_ranks: tuple[int, ...]
    inputs: tuple[str, ...] = ()
    output: str = ""


@dataclass(frozen=True)
class Rename:
    """`target = source`: a value kept for later while `source` moves on (`shortcut = x`)."""

    target: str
    source: str


@dataclass(frozen=True)
class Comment:
    text: str


@dataclass(frozen=True)
class Param:
    """A parameter of a block definition or of the model, with its annotation; `default`
    only for the model's (the spec parameter's value)."""

    name: str
    annotation: str
    default: Any = None


@dataclass(frozen=True)
class BlockDef:
    """A block's layers, shared by its instances: the instance name and `params` vary."""

    name: str  # the Python name it becomes (a function, a class: the printer decides)
    block: str  # the spec's block name
    params: tuple[Param, ...]
    body: tuple[Statement, ...]
    output: str  # the variable returned
    inputs: tuple[str, ...] = ("x",)  # the variables of the values it takes, in order
    instances: tuple[str, ...] = ()  # where a block has several structures: which is this


@dataclass(frozen=True)
class BlockCall:
    """One block instance: the definition, the instance's name and its arguments. `label` is
    what the definition's `name` receives, the text its nodes are named with (the instance's
    name, or NASNet's cell number that ends each node name). `carry`: the variable that
    takes the old value of `output` as the call overwrites it (`x, previous = cell(x,
    previous), x`), where that value is the next call's second input."""

    block: BlockDef
    instance: str | Code
    args: Mapping[str, Any]
    nodes: tuple[str, ...]  # the instance's node names, in order
    inputs: tuple[str, ...] = ()
    output: str = ""
    label: str | Code = ""
    carry: str = ""


@dataclass(frozen=True)
class Loop:
    """`for var in range(start, stop):` around block calls that differ only by the index."""

    var: str
    start: int
    stop: int
    body: tuple[Statement, ...]


Statement = LayerStep | Rename | Comment | BlockCall | Loop


@dataclass(frozen=True)
class Program:
    spec_name: str
    class_name: str
    function_name: str
    description: str
    header: tuple[str, ...]
    inputs: tuple[LayerStep, ...]
    body: tuple[Statement, ...]
    outputs: tuple[str, ...]
    blocks: tuple[BlockDef, ...]
    analysed: AnalysedGraph
    params: tuple[Param, ...] = ()  # the model's keyword arguments, with defaults
    line_length: int = 88


class Printer(Protocol):
    """What a backend's `codegen` module offers the core."""

    RESERVED: frozenset[str]
    TAKEN: frozenset[str]  # names the generated class has already (an nn.Module's methods)
    INPUT_VAR: str  # the variable of a model's only input
    KEEP_INPUTS: bool  # whether the input variables stay alive to the end (Keras's Model call)

    def check_node_name(self, node: Node) -> None: ...

    def lower(self, analysed: AnalysedGraph, node: Node) -> list[LayerCall]: ...

    def structural(self, call: LayerCall) -> frozenset[str]: ...

    def block_name(self, block: str, taken: set[str]) -> str:
        """The Python name of a block definition, clear of `taken`, which it then adds
        all the names it makes to (torch: a class; Keras: a function)."""
        ...

    def render(self, program: Program) -> str: ...
