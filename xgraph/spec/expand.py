"""Expansion: parameters, blocks, repetitions and conditions resolved into a flat node list.

The result still holds raw attribute values; `xgraph.spec.compile` checks them against each
op's attribute model and builds the graph IR.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xgraph.errors import Location, SpecError, as_yaml, did_you_mean
from xgraph.spec.expressions import ExpressionError, has_expression, resolve
from xgraph.spec.model import NodeItem, Spec, UseItem
from xgraph.spec.params import Argument, Override, bind_params
from xgraph.spec.source import PathKey, SourceMap

MAX_NODES = 100_000
BLOCK_BOUND_NAMES = ("name", "input", "inputs")  # bound in every block instance's scope


@dataclass
class RawNode:
    """A node after expansion, before its attributes are checked against its op."""

    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: dict[str, Any]
    location: Location
    attr_locations: dict[str, Location] = field(default_factory=dict)
    input_locations: tuple[Location, ...] = ()
    block: tuple[str, ...] = ()
    trace: tuple[Location, ...] = ()
    path: PathKey = ()  # where the node was written, to locate errors inside its attributes


@dataclass
class Expansion:
    name: str
    params: dict[str, Any]
    nodes: list[RawNode]
    outputs: list[tuple[str, Location]]
    initializer: str


class _Expander:
    def __init__(self, spec: Spec, where: SourceMap, params: dict[str, Any]) -> None:
        self.spec = spec
        self.where = where
        self.params = params
        self.nodes: list[RawNode] = []
        self.auto_names: dict[str, int] = {}

    def resolve(self, value: Any, scope: Mapping[str, Any], path: PathKey) -> Any:
        try:
            return resolve(value, scope)
        except ExpressionError as exc:
            hint = did_you_mean(exc.unknown_name, scope) if exc.unknown_name else None
            raise SpecError(str(exc), self.where.value(path), hint=hint) from None

    def resolve_name(self, value: Any, scope: Mapping[str, Any], path: PathKey) -> str:
        name = self.resolve(value, scope, path)
        if not isinstance(name, str) or not name.isidentifier():
            raise SpecError(
                f"{name!r} is not a valid name: use letters, digits and '_', not starting "
                "with a digit",
                self.where.value(path),
            )
        return name

    def condition(self, when: Any, scope: Mapping[str, Any], path: PathKey) -> bool:
        if when is None:
            return True
        value = self.resolve(when, scope, (*path, "when"))
        if not isinstance(value, bool):
            raise SpecError(
                f"'when' must be true or false, got {as_yaml(value)}",
                self.where.value((*path, "when")),
            )
        return value

    def references(
        self, value: Any, scope: Mapping[str, Any], path: PathKey
    ) -> tuple[tuple[str, ...], tuple[Location, ...]]:
        if isinstance(value, str) and has_expression(value):
            resolved = self.resolve(value, scope, path)
            if isinstance(resolved, list):  # `inputs: "${inputs}"` inside a block
                names = tuple(self.resolve_name(v, scope, path) for v in resolved)
                return names, tuple(self.where.value(path) for _ in names)
        if isinstance(value, list):
            paths = [(*path, i) for i in range(len(value))]
            names = tuple(self.resolve_name(v, scope, p) for v, p in zip(value, paths, strict=True))
            return names, tuple(self.where.value(p) for p in paths)
        return (self.resolve_name(value, scope, path),), (self.where.value(path),)

    def add(self, node: RawNode) -> None:
        if len(self.nodes) >= MAX_NODES:
            raise SpecError(f"the spec expands to more than {MAX_NODES} nodes", node.location)
        self.nodes.append(node)

    def items(
        self,
        items: list[Any],
        path: PathKey,
        scope: dict[str, Any],
        previous: str | None,
        block: tuple[str, ...],
        trace: tuple[Location, ...],
        stack: tuple[str, ...],
    ) -> str | None:
        """Expand a list of items in order; returns the name of the last node produced."""
        for index, item in enumerate(items):
            item_path = (*path, index)
            if not self.condition(item.when, scope, item_path):
                continue
            if isinstance(item, NodeItem):
                previous = self.node(item, item_path, scope, previous, block, trace)
            else:
                previous = self.use(item, item_path, scope, previous, block, trace, stack)
        return previous

    def node(
        self,
        item: NodeItem,
        path: PathKey,
        scope: dict[str, Any],
        previous: str | None,
        block: tuple[str, ...],
        trace: tuple[Location, ...],
    ) -> str:
        location = self.where.value(path)
        if item.op == "input":
            raise SpecError(
                "inputs are declared under the top-level 'inputs' key, not as nodes",
                self.where.value((*path, "op")),
            )
        if item.name is None:
            count = self.auto_names.get(item.op, 0)
            self.auto_names[item.op] = count + 1
            name = item.op if count == 0 else f"{item.op}_{count}"
        else:
            name = self.resolve_name(item.name, scope, (*path, "name"))
        if item.inputs is not None:
            inputs, input_locations = self.references(item.inputs, scope, (*path, "inputs"))
        elif previous is not None:
            inputs, input_locations = (previous,), (location,)
        else:
            raise SpecError(f"node '{name}' has no node before it: give it 'inputs'", location)
        extra = item.model_extra or {}
        attrs = {key: self.resolve(value, scope, (*path, key)) for key, value in extra.items()}
        locations = {key: self.where.value((*path, key)) for key in extra}
        if item.inputs is not None:
            locations["inputs"] = self.where.value((*path, "inputs"))
        self.add(
            RawNode(
                name=name,
                op=item.op,
                inputs=inputs,
                attrs=attrs,
                location=location,
                attr_locations=locations,
                input_locations=input_locations,
                block=block,
                trace=trace,
                path=path,
            )
        )
        return name

    def use(
        self,
        item: UseItem,
        path: PathKey,
        scope: dict[str, Any],
        previous: str | None,
        block: tuple[str, ...],
        trace: tuple[Location, ...],
        stack: tuple[str, ...],
    ) -> str | None:
        location = self.where.value(path)
        if item.use not in self.spec.blocks:
            raise SpecError(
                f"unknown block '{item.use}'",
                self.where.value((*path, "use")),
                hint=did_you_mean(item.use, self.spec.blocks),
            )
        if item.use in stack:
            chain = " -> ".join((*stack, item.use))
            raise SpecError(
                f"block '{item.use}' uses itself ({chain})", self.where.value((*path, "use"))
            )
        decl = self.spec.blocks[item.use]
        block_path: PathKey = ("blocks", item.use)
        count = 1
        if item.repeat is not None:
            count = self.resolve(item.repeat, scope, (*path, "repeat"))
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise SpecError(
                    f"'repeat' must be a whole number >= 0, got {as_yaml(count)}",
                    self.where.value((*path, "repeat")),
                )
            if count > MAX_NODES:  # even a block that adds no nodes must not loop for ever
                raise SpecError(
                    f"'repeat' is {count}, more than the limit of {MAX_NODES}",
                    self.where.value((*path, "repeat")),
                )
        inputs: tuple[str, ...] | None = None
        if item.inputs is not None:
            inputs, _ = self.references(item.inputs, scope, (*path, "inputs"))
        for repetition in range(count):
            outer = {**scope, item.index: repetition} if item.repeat is not None else scope
            name = self.resolve_name(item.name, outer, (*path, "name"))
            block_inputs = inputs if (inputs and repetition == 0) else (previous,)
            if block_inputs[0] is None:
                raise SpecError(f"block instance '{name}' has no input: give it 'inputs'", location)
            given = {
                key: Argument(
                    self.resolve(value, outer, (*path, "args", key)),
                    self.where.value((*path, "args", key)),
                    self.where.key((*path, "args", key)),
                )
                for key, value in item.args.items()
            }
            bound = bind_params(
                decl.params,
                given,
                self.where,
                (*block_path, "params"),
                f"block '{item.use}'",
                site=location,
                reserved=BLOCK_BOUND_NAMES,
            )
            inner = {
                **self.params,
                **bound,
                "name": name,
                "input": block_inputs[0],
                "inputs": list(block_inputs),
            }
            previous = self.items(
                decl.nodes,
                (*block_path, "nodes"),
                inner,
                block_inputs[0],
                (*block, name),
                (*trace, location),
                (*stack, item.use),
            )
        return previous


def expand(spec: Spec, where: SourceMap, overrides: list[Override]) -> Expansion:
    """Resolve parameters (defaults, then `--set` overrides) and flatten the spec into nodes."""
    given = {o.name: o.argument for o in overrides}
    params = bind_params(spec.params, given, where, ("params",), f"spec '{spec.name}'")
    expander = _Expander(spec, where, params)
    for index, decl in enumerate(spec.inputs):
        path: PathKey = ("inputs", index)
        name = expander.resolve_name(decl.name, params, (*path, "name"))
        shape = expander.resolve(decl.shape, params, (*path, "shape"))
        expander.add(
            RawNode(
                name=name,
                op="input",
                inputs=(),
                attrs={"shape": shape},
                location=where.value(path),
                attr_locations={"shape": where.value((*path, "shape"))},
                path=path,
            )
        )
    first_input = expander.nodes[0].name
    last = expander.items(spec.nodes, ("nodes",), dict(params), first_input, (), (), ())
    if spec.outputs is None:
        outputs = [(last or first_input, where.value(("nodes",)))]
    else:
        outputs = [
            (expander.resolve_name(ref, params, ("outputs", i)), where.value(("outputs", i)))
            for i, ref in enumerate(spec.outputs)
        ]
    return Expansion(spec.name, params, expander.nodes, outputs, spec.initializer)
