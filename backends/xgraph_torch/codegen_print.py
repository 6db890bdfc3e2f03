"""The torch program's statements as lines of `__init__` and `forward`: the model's, and
those of one `nn.Module` class per block definition, as timm writes its models.

Layers are attributes (`self.block1_conv1`; inside a block class, the name within the
instance: `self.sepconv1`); a block instance is an attribute holding its class's module
(`self.block3 = DownsamplingBlock(...)`), a run of instances one `nn.Sequential`. The same
walk gives each node's module path, which its state dict keys start with.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from typing import Any

from xgraph.codegen import (
    BlockCall,
    BlockDef,
    Code,
    Comment,
    LayerStep,
    Loop,
    Rename,
    Statement,
    assign_call,
    clear_of,
    format_call,
    identifier,
    plain,
    python_literal,
)
from xgraph_torch.codegen_layers import LayerPrinter

OWN = frozenset({"forward", "training"})


def plain_attribute(name: str) -> bool:
    """Whether `self.<name>` names the attribute `name`: not for a keyword (`self.class`),
    a name Python mangles in a class (`self.__x` is `self._Model__x`), or a non-ASCII one
    (Python NFKC-normalises it). Those are registered and read by their string instead."""
    if not name.isascii() or keyword.iskeyword(name):
        return False
    return not (name.startswith("__") and not name.endswith("__"))


def _new_attribute(text: str, used: set[str]) -> str:
    """An attribute name made from `text`, plain (`self.<name>` works) and not in `used`."""
    name = identifier(text, "layer")
    if not plain_attribute(name):
        name = "layer_" + re.sub(r"[^0-9A-Za-z_]", "_", name).strip("_")
    name = clear_of(name, used)
    used.add(name)
    return name


def _only_call(loop: Loop) -> BlockCall:
    """The block call a loop repeats: the core loops over block calls only."""
    (call,) = loop.body
    assert isinstance(call, BlockCall)
    return call


def _prefix(instance: str | Code) -> str:
    """`block` of the loop's `f"block{i}"`."""
    text = instance.text if isinstance(instance, Code) else instance
    return text[2:].split("{", 1)[0] if text.startswith('f"') else "blocks"


class StatementPrinter:
    """Prints statements; `attributes` names the module of each step, call and loop."""

    def __init__(self, layers: LayerPrinter, width: int, taken: frozenset[str]) -> None:
        self.layers = layers
        self.width = width
        self.taken = taken
        self.attributes: dict[int, str] = {}  # id(statement) -> attribute name
        self.paths: dict[str, str] = {}  # node -> module path
        self.classes: dict[str, str] = {}  # block definition -> class name

    def call(self, indent: int, head: str, args: Sequence[Any], tail: str = "") -> list[str]:
        return format_call(indent, head, args, tail, self.width)

    def name_model(self, body: Sequence[Statement]) -> None:
        """Attributes of the model: node names as they are, block instances and runs of
        them after the instance (`block3`, `block5_12`), clear of every other."""
        used = {*self.taken, *OWN}
        for item in body:
            if isinstance(item, LayerStep):
                used.add(item.node.name)
        for item in body:
            if isinstance(item, LayerStep):
                self.attributes[id(item)] = item.node.name
                self.paths[item.node.name] = item.node.name
            elif isinstance(item, BlockCall):
                name = self.attributes[id(item)] = _new_attribute(str(item.instance), used)
                self.name_block(item.block)
                self._paths(item.block, item.nodes, [name])
            elif isinstance(item, Loop):
                call = _only_call(item)
                label = f"{_prefix(call.instance)}{item.start}_{item.stop - 1}"
                name = self.attributes[id(item)] = _new_attribute(label, used)
                self.name_block(call.block)
                count = item.stop - item.start
                self._paths(call.block, call.nodes, [f"{name}.{i}" for i in range(count)])

    def name_block(self, block: BlockDef) -> None:
        if any(id(s) in self.attributes for s in block.body):
            return
        used = {*self.taken, *OWN}
        for item in block.body:
            if isinstance(item, LayerStep):
                self.attributes[id(item)] = _new_attribute(item.local, used)

    def _paths(self, block: BlockDef, nodes: Sequence[str], prefixes: list[str]) -> None:
        steps = [s for s in block.body if isinstance(s, LayerStep)]
        for index, node in enumerate(nodes):
            step = steps[index % len(steps)]
            prefix = prefixes[index // len(steps)]
            self.paths[node] = f"{prefix}.{self.attributes[id(step)]}"

    def attribute(self, item: Statement) -> str:
        name = self.attributes[id(item)]
        if plain_attribute(name):
            return f"self.{name}"
        return f"getattr(self, {python_literal(name)})"

    def init_lines(self, items: Sequence[Statement], indent: int) -> list[str]:
        lines: list[str] = []
        for item in items:
            if isinstance(item, Comment):
                lines.append(f"{' ' * indent}# {item.text}")
            elif isinstance(item, LayerStep):
                for call in item.calls:
                    made = self.layers.module(item, call)
                    if made is None:
                        continue
                    cls, args = made
                    name = self.attributes[id(item)]
                    if plain_attribute(name):
                        lines += self.call(indent, f"self.{name} = {cls}", args)
                    else:
                        head = "self.add_module"
                        lines += self.call(indent, head, [python_literal(name), (cls, args)])
            elif isinstance(item, BlockCall):
                cls, args = self.instance(item)
                lines += self.call(indent, f"{self.attribute(item)} = {cls}", args)
            elif isinstance(item, Loop):
                run = _only_call(item)
                cls, args = self.instance(run)
                target = self.attribute(item)
                kind = "nn.ModuleList" if run.carry else "nn.Sequential"
                lines.append(f"{' ' * indent}{target} = {kind}()")
                lines.append(f"{' ' * indent}for _ in range({item.stop - item.start}):")
                lines += self.call(indent + 4, f"{target}.append", [(cls, args)])
        return lines

    def instance(self, call: BlockCall) -> tuple[str, list[str]]:
        args = [f"{k}={python_literal(plain(k, v))}" for k, v in call.args.items()]
        return self.classes[call.block.name], args

    def forward_lines(self, items: Sequence[Statement], indent: int) -> list[str]:
        lines: list[str] = []
        pad = " " * indent
        for item in items:
            if isinstance(item, Comment):
                lines.append(f"{pad}# {item.text}")
            elif isinstance(item, Rename):
                lines.append(f"{pad}{item.target} = {item.source}")
            elif isinstance(item, LayerStep):
                target = self.attribute(item) if id(item) in self.attributes else ""
                for call in item.calls:
                    made = self.layers.forward(item, call, target)
                    if isinstance(made, str):
                        lines.append(f"{pad}{item.output} = {made}")
                    else:
                        lines += self.call(indent, f"{item.output} = {made[0]}", made[1])
            elif isinstance(item, BlockCall):
                target = self.attribute(item)
                lines += assign_call(
                    indent, item.output, item.carry, target, item.inputs, self.width
                )
            elif isinstance(item, Loop):
                run = _only_call(item)
                if run.carry:  # a ModuleList: each module takes the two values along
                    lines.append(f"{pad}for block in {self.attribute(item)}:")
                    lines += assign_call(
                        indent + 4, run.output, run.carry, "block", run.inputs, self.width
                    )
                else:
                    lines += self.call(indent, f"{run.output} = {self.attribute(item)}", run.inputs)
        return lines
