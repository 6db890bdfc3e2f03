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

from xgraph.analysis import AnalysedGraph
from xgraph.errors import SpecError
from xgraph.plugins import OP_RULES, entries, loaded, package_of


def rule_backends() -> list[str]:
    """Every backend name that some installed package registers rules for."""
    return sorted({entry.name for entry in entries(OP_RULES)})


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
    """Fail at the first node whose op `backend` cannot lower, before anything is built."""
    rules = op_rules(backend)
    for node in analysed.graph.nodes:
        if node.op not in rules:
            able = backends_for(node.op)
            raise SpecError(
                f"op '{node.op}' (node '{node.name}') has no lowering for the {backend} backend",
                node.location,
                hint=f"backends that lower '{node.op}': {', '.join(able)}"
                if able
                else f"no installed backend lowers '{node.op}'",
                notes=[f"'{node.op}' comes from package '{node.opdef.origin}'"],
            )
