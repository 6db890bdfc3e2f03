"""Expansion: parameters, blocks, repetitions and conditions resolved into a flat node list,
attribute values raw (`defaults:` applied): `xgraph.spec.compile` checks them per op.

Expansion is where a few lines of spec can cause the most work (a block repeated within a
repeated block), so it counts its steps against the `expansion_steps` budget: every item
visited, switched off by `when` or not, every repetition, and every expression operation.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any, NamedTuple

from xgraph.budgets import Budgets, active_budgets
from xgraph.errors import Location, SpecError, as_yaml, did_you_mean
from xgraph.spec.defaults import override_defaults, resolve_defaults
from xgraph.spec.expansion import (
    Expansion,
    NodePlan,
    RawNode,
    check_overrides,
    has_expressions,
    keep_direct_only,
    with_defaults,
)
from xgraph.spec.expressions import Evaluator, ExpressionError, direct_name, has_expression
from xgraph.spec.model import NodeItem, Spec, UseItem
from xgraph.spec.params import Argument, Override, bind_params
from xgraph.spec.source import PathKey, SourceMap

__all__ = ["Expansion", "RawNode", "expand"]

BLOCK_BOUND_NAMES = ("name", "input", "inputs")  # bound in every block instance's scope
INSTANCE_STEPS = 20  # the work of making a block instance, in expression operations


class _Context(NamedTuple):
    """Where the items being expanded sit: the block instances around them (names and the
    `use` items they came through) and the blocks being expanded, to catch recursion."""

    block: tuple[str, ...] = ()
    trace: tuple[Location, ...] = ()
    stack: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()  # the block each instance in `block` instantiates


class _Expander:
    def __init__(
        self, spec: Spec, where: SourceMap, params: dict[str, Any], budgets: Budgets
    ) -> None:
        self.spec = spec
        self.where = where
        self.params = params
        self.budgets = budgets
        self.evaluator = Evaluator(budgets)
        self.nodes: list[RawNode] = []
        self.auto_names: dict[str, int] = {}
        self._plans: dict[PathKey, NodePlan] = {}
        self._item_paths: dict[PathKey, list[PathKey]] = {}
        self.defaults = resolve_defaults(spec.defaults, where, partial(self.resolve, scope=params))

    def charge(self, steps: int, path: PathKey) -> None:
        try:
            self.evaluator.charge(steps)
        except ExpressionError as exc:
            location = self.where.value(path)
            raise self.budgets.exceeded("expansion_steps", str(exc), location) from None

    def resolve(self, value: Any, scope: Mapping[str, Any], path: PathKey) -> Any:
        if not isinstance(value, str | list | dict) or (type(value) is str and "${" not in value):
            return value
        try:
            if type(value) is str:
                return self.evaluator.substitute(value, scope)
            return self.evaluator.resolve(value, scope)
        except ExpressionError as exc:
            raise self.expression_error(exc, scope, path) from None

    def expression_error(
        self, exc: ExpressionError, scope: Mapping[str, Any], path: PathKey
    ) -> SpecError:
        """An expression's failure, located at the value that holds it."""
        location = self.where.value(path)
        if exc.limit is not None:
            return self.budgets.exceeded(exc.limit, str(exc), location)
        hint = did_you_mean(exc.unknown_name, scope) if exc.unknown_name else None
        return SpecError(str(exc), location, hint=hint)

    def resolve_name(self, value: Any, scope: Mapping[str, Any], path: PathKey) -> str:
        if type(value) is str and "${" in value:  # the usual case, made short
            try:
                name = self.evaluator.substitute(value, scope)
            except ExpressionError as exc:
                raise self.expression_error(exc, scope, path) from None
        else:
            name = self.resolve(value, scope, path)
        if type(name) is not str or not name.isidentifier():
            shown = as_yaml(name)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise SpecError(
                f"{shown} is not a valid name: use letters, digits and '_', not starting "
                "with a digit",
                self.where.value(path),
            )
        return name

    def condition(self, when: Any, scope: Mapping[str, Any], path: PathKey) -> bool:
        if when is None:
            return True
        value = self.resolve(when, scope, (*path, "when"))
        if not isinstance(value, bool):
            shown = as_yaml(value)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise SpecError(
                f"'when' must be true or false, got {shown}", self.where.value((*path, "when"))
            )
        return value

    def references(
        self, value: Any, scope: Mapping[str, Any], path: PathKey
    ) -> tuple[tuple[str, ...], tuple[Location, ...]]:
        if isinstance(value, str) and has_expression(value):
            resolved = self.resolve(value, scope, path)
            if isinstance(resolved, list):  # `inputs: "${inputs}"` inside a block
                names = tuple(self.resolve_name(v, scope, path) for v in resolved)
                return names, (self.where.value(path),) * len(names)
        if isinstance(value, list):
            paths = [(*path, i) for i in range(len(value))]
            names = tuple(self.resolve_name(v, scope, p) for v, p in zip(value, paths, strict=True))
            return names, tuple(self.where.value(p) for p in paths)
        return (self.resolve_name(value, scope, path),), (self.where.value(path),)

    def add(self, node: RawNode) -> None:
        if len(self.nodes) >= self.budgets.nodes:
            raise self.too_many_nodes(node.location)
        self.nodes.append(node)

    def too_many_nodes(self, location: Location) -> SpecError:
        limit = self.budgets.nodes
        return self.budgets.exceeded(
            "nodes", f"the spec expands to more than {limit:,} nodes", location
        )

    def items(
        self,
        items: list[Any],
        path: PathKey,
        scope: dict[str, Any],
        previous: str | None,
        context: _Context,
    ) -> str | None:
        """Expand a list of items in order; returns the name of the last node produced."""
        evaluator = self.evaluator
        paths = self._item_paths.get(path)
        if paths is None:
            paths = self._item_paths[path] = [(*path, index) for index in range(len(items))]
        for item, item_path in zip(items, paths, strict=True):
            evaluator.steps += 1  # switched off or not, visiting an item is work
            if evaluator.steps > evaluator.max_steps:
                self.charge(0, item_path)
            when = item.when
            if when is False or (
                when is not None and when is not True and not self.condition(when, scope, item_path)
            ):
                continue
            if isinstance(item, NodeItem):
                previous = self.node(item, item_path, scope, previous, context)
            else:
                previous = self.use(item, item_path, scope, previous, context)
        return previous

    def plan(self, item: NodeItem, path: PathKey) -> NodePlan:
        """What is known of the node written at `path` before any scope: a block's nodes are
        expanded many times, their locations and constant attributes looked up once."""
        found = self._plans.get(path)
        if found is not None:
            return found
        if item.op == "input":
            raise SpecError(
                "inputs are declared under the top-level 'inputs' key, not as nodes",
                self.where.value((*path, "op")),
            )
        extra, defaulted = with_defaults(item.model_extra or {}, self.defaults.get(item.op, {}))
        locations = {key: self.where.value((*path, key)) for key in extra} | defaulted
        if item.inputs is not None:
            locations["inputs"] = self.where.value((*path, "inputs"))
        found = self._plans[path] = NodePlan(
            location=self.where.value(path),
            constant={key: value for key, value in extra.items() if not has_expressions(value)},
            varying=[(key, value) for key, value in extra.items() if has_expressions(value)],
            attr_locations=locations,
            direct={key: name for key, value in extra.items() if (name := direct_name(value))},
            defaulted=defaulted,
        )
        return found

    def node(
        self,
        item: NodeItem,
        path: PathKey,
        scope: dict[str, Any],
        previous: str | None,
        context: _Context,
    ) -> str:
        plan = self.plan(item, path)
        location = plan.location
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
        attrs = plan.constant  # shared while nothing varies: attributes are only read
        if plan.varying:
            attrs = dict(attrs)
            for key, value in plan.varying:
                attrs[key] = self.resolve(value, scope, (*path, key))
        if len(self.nodes) >= self.budgets.nodes:
            raise self.too_many_nodes(location)
        self.nodes.append(
            RawNode(
                name,
                item.op,
                inputs,
                attrs,
                location,
                plan.attr_locations,
                input_locations,
                context.block,
                context.trace,
                path,
                context.uses,
                # Provenance for code generation: a top-level attribute that is exactly a
                # spec parameter (`units: ${classes}`) may stay that parameter in the code.
                {k: n for k, n in plan.direct.items() if n in self.params}
                if plan.direct and not context.block
                else {},
                plan.defaulted,
            )
        )
        return name

    def repeat_count(self, item: UseItem, scope: Mapping[str, Any], path: PathKey) -> int:
        if item.repeat is None:
            return 1
        count = self.resolve(item.repeat, scope, (*path, "repeat"))
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            shown = as_yaml(count)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise SpecError(
                f"'repeat' must be a whole number >= 0, got {shown}",
                self.where.value((*path, "repeat")),
            )
        limit = self.budgets.expansion_steps
        if count > limit:  # refused at once: each repetition is a step
            raise self.budgets.exceeded(
                "expansion_steps",
                f"'repeat' is {count:,}, more than the {limit:,} steps expansion may take",
                self.where.value((*path, "repeat")),
            )
        return count

    def use(
        self,
        item: UseItem,
        path: PathKey,
        scope: dict[str, Any],
        previous: str | None,
        context: _Context,
    ) -> str | None:
        location = self.where.value(path)
        if item.use not in self.spec.blocks:
            raise SpecError(
                f"unknown block '{item.use}'",
                self.where.value((*path, "use")),
                hint=did_you_mean(item.use, self.spec.blocks),
            )
        if item.use in context.stack:
            chain = " -> ".join((*context.stack, item.use))
            raise SpecError(
                f"block '{item.use}' uses itself ({chain})", self.where.value((*path, "use"))
            )
        decl = self.spec.blocks[item.use]
        block_path: PathKey = ("blocks", item.use)
        count = self.repeat_count(item, scope, path)
        inputs: tuple[str, ...] | None = None
        if item.inputs is not None:
            inputs, _ = self.references(item.inputs, scope, (*path, "inputs"))
        for repetition in range(count):
            # An instance costs about twenty expression operations, and copies the scope.
            self.charge(INSTANCE_STEPS + len(scope) + len(decl.params), path)
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
                budgets=self.budgets,
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
                _Context(
                    (*context.block, name),
                    (*context.trace, location),
                    (*context.stack, item.use),
                    (*context.uses, item.use),
                ),
            )
        return previous


def expand(
    spec: Spec,
    where: SourceMap,
    overrides: list[Override],
    budgets: Budgets | None = None,
) -> Expansion:
    """Resolve parameters (defaults, then `--set` overrides) and flatten the spec into nodes."""
    budgets = active_budgets(budgets)
    if not spec.name.strip():
        raise SpecError(
            "the model's 'name' is empty",
            where.value(("name",)),
            hint="give it a name, such as name: xception",
        )
    given = check_overrides(overrides)  # parameters only: defaults.OP.ATTR set below
    params = bind_params(
        spec.params, given, where, ("params",), f"spec '{spec.name}'", budgets=budgets
    )
    expander = _Expander(spec, where, params, budgets)
    expander.defaults = override_defaults(expander.defaults, overrides)
    for index, decl in enumerate(spec.inputs):
        path: PathKey = ("inputs", index)
        expander.charge(1, path)
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
    last = expander.items(spec.nodes, ("nodes",), dict(params), first_input, _Context())
    if spec.outputs is None:
        outputs = [(last or first_input, where.value(("nodes",)))]
    else:
        outputs = []
        for i, ref in enumerate(spec.outputs):
            expander.charge(1, ("outputs", i))
            name = expander.resolve_name(ref, params, ("outputs", i))
            outputs.append((name, where.value(("outputs", i))))
    training = None
    if spec.training is not None:
        training = {
            key: expander.resolve(value, params, ("training", key))
            for key, value in spec.training.items()
        }
    keep_direct_only(spec, expander.nodes)
    description = " ".join((spec.description or "").split())
    expansion = Expansion(spec.name, params, expander.nodes, outputs, spec.initializer, training)
    expansion.description, expansion.defaults = description, expander.defaults
    return expansion
