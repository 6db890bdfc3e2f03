"""Which backend can lower which op: the rule tables backends and plugins register.

A backend keeps everything it knows about an op (its lowering, its weight layout) in one rule
per op. Tables come through the `xgraph.op_rules` entry-point group, one entry per backend
and package, built-in ones included; they are framework-free, so reading them imports
neither torch nor tensorflow. The core only asks which ops a table has: what a rule holds is
the backend's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from xgraph.errors import SpecError
from xgraph.ir.analysis import AnalysedGraph
from xgraph.plugins import OP_RULES, entries, installed_backends, loaded, package_of


def rule_backends() -> list[str]:
    """The installed backends that some package registers rules for (rules a plugin ships
    for a backend that is not installed are never loaded)."""
    ruled = {entry.name for entry in entries(OP_RULES)}
    return [name for name in installed_backends() if name in ruled]


@cache
def op_rules(backend: str) -> Mapping[str, Any]:
    """The backend's rule for each op it lowers, merged over every package that registers
    rules for it; one op ruled twice for one backend is an error naming both packages."""
    rules: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for entry, table in loaded(OP_RULES, backend):
        if not isinstance(table, Mapping):
            raise SpecError(
                f"op rules '{entry.value}' of package '{package_of(entry)}' must name a mapping "
                f"of op names to {backend} rules, got {type(table).__name__}"
            )
        for op, rule in table.items():
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


def require_rules(analysed: AnalysedGraph, backend: str) -> None:
    """Fail at the first node whose op `backend` cannot lower, or whose weights its rule
    does not place (a rule's `weight_names`), before anything is built."""
    rules = op_rules(backend)
    for node in analysed.graph.nodes:
        rule = rules.get(node.op)
        placed = getattr(rule, "weight_names", None)
        if rule is not None and placed is not None:
            unplaced = [p.name for p in analysed.counts[node.name].params if p.name not in placed]
            if unplaced:
                raise SpecError(
                    f"the {backend} rule of op '{node.op}' (node '{node.name}') does not place "
                    f"its weights {', '.join(unplaced)}",
                    node.location,
                    notes=[f"'{node.op}' comes from package '{node.opdef.origin}'"],
                )
        if rule is None:
            able = backends_for(node.op)
            raise SpecError(
                f"op '{node.op}' (node '{node.name}') has no lowering for the {backend} backend",
                node.location,
                hint=f"backends that lower '{node.op}': {', '.join(able)}"
                if able
                else f"no installed backend lowers '{node.op}'",
                notes=[f"'{node.op}' comes from package '{node.opdef.origin}'"],
            )
