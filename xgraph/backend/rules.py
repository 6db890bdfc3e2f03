"""Which backend can lower which op: the rule tables backends and plugins register.

A backend keeps everything it knows about an op (its lowering, its weight layout) in one rule
per op. Tables come through the `xgraph.op_rules` entry-point group, one entry per backend
and package, built-in ones included; they are framework-free, so reading them imports
neither torch nor tensorflow. The core asks a rule only what `OpRule` states: its lowering,
whose result is the backend's business, and the slot of each of the op's weights.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, Protocol, runtime_checkable

from xgraph.errors import SpecError
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.plugins import OP_RULES, entries, installed_backends, loaded, package_of
from xgraph.weights.slots import PlacedWeight, WeightSlot


@runtime_checkable
class OpRule(Protocol):
    """An op in one backend, as every backend's rules (TorchRule, KerasRule, OnnxRule, a
    plugin's) state it: `lower` makes a node's description in the backend's own terms
    (layer calls, ONNX nodes), and `weights` gives each canonical parameter of the op, by
    the name its ParamSpec has, the slot the backend holds it in (in Keras's order for
    Keras, whose files list weights by position)."""

    @property
    def lower(self) -> Callable[..., Any]: ...

    @property
    def weights(self) -> Mapping[str, WeightSlot]: ...


def rule_backends() -> list[str]:
    """The installed backends that some package registers rules for (rules a plugin ships
    for a backend that is not installed are never loaded)."""
    ruled = {entry.name for entry in entries(OP_RULES)}
    return [name for name in installed_backends() if name in ruled]


@cache
def op_rules(backend: str) -> Mapping[str, OpRule]:
    """The backend's rule for each op it lowers, merged over every package that registers
    rules for it; one op ruled twice for one backend is an error naming both packages."""
    rules: dict[str, OpRule] = {}
    owner: dict[str, str] = {}
    for entry, table in loaded(OP_RULES, backend):
        if not isinstance(table, Mapping):
            raise SpecError(
                f"op rules '{entry.value}' of package '{package_of(entry)}' must name a mapping "
                f"of op names to {backend} rules, got {type(table).__name__}"
            )
        for op, rule in table.items():
            if not isinstance(rule, OpRule):
                raise SpecError(
                    f"the {backend} rule of op '{op}' from package '{package_of(entry)}' must "
                    f"have a `lower` and its `weights`' slots, got {type(rule).__name__}"
                )
            if op in rules:
                raise SpecError(
                    f"op '{op}' has two {backend} rules: from package '{owner[op]}' and from "
                    f"package '{package_of(entry)}'",
                    hint=f"uninstall one of them, or drop the rule from '{package_of(entry)}'",
                )
            rules[op] = rule
            owner[op] = package_of(entry)
    return rules


def backends_for(op: str) -> list[str]:
    """The backends that can lower `op`."""
    return [name for name in rule_backends() if op in op_rules(name)]


def placed_weights(analysed: AnalysedGraph, node: Node, backend: str) -> list[PlacedWeight]:
    """The node's parameters, in the op's order, each with the slot `backend`'s rule holds
    it in; a parameter the rule has no slot for is a located error."""
    rule = op_rules(backend)[node.op]
    params = analysed.counts[node.name].params
    unplaced = [param.name for param in params if param.name not in rule.weights]
    if unplaced:
        raise SpecError(
            f"the {backend} rule of op '{node.op}' (node '{node.name}') does not place its "
            f"weights {', '.join(unplaced)}",
            node.location,
            notes=[f"'{node.op}' comes from package '{node.opdef.origin}'"],
        )
    return [PlacedWeight(node.name, param, rule.weights[param.name]) for param in params]


def require_rules(analysed: AnalysedGraph, backend: str) -> None:
    """Fail at the first node whose op `backend` cannot lower, or whose weights its rule
    does not place, before anything is built."""
    rules = op_rules(backend)
    for node in analysed.graph.nodes:
        if node.op in rules:
            placed_weights(analysed, node, backend)
        else:
            able = backends_for(node.op)
            raise SpecError(
                f"op '{node.op}' (node '{node.name}') has no lowering for the {backend} backend",
                node.location,
                hint=f"backends that lower '{node.op}': {', '.join(able)}"
                if able
                else f"no installed backend lowers '{node.op}'",
                notes=[f"'{node.op}' comes from package '{node.opdef.origin}'"],
            )
