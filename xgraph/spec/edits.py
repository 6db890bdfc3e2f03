"""Notes that point an error inside an inherited node at the user's own edit.

An error found in a base spec's node (`specs/xception.yaml:76:48: node 'block5_add': add needs
inputs of one shape`) is often caused elsewhere: by an `override` in an extending file, a
parameter default it changed, or a `--set`. The error stays where it is found; these notes
name each such edit that the failing node or a node it depends on reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from xgraph.errors import Location, SpecError, as_yaml
from xgraph.spec.defaults import default_notes
from xgraph.spec.expansion import Expansion, RawNode
from xgraph.spec.expressions import names_in
from xgraph.spec.params import Override
from xgraph.spec.source import PathKey, Source

MAX_NOTES = 4
_NODE = re.compile(r"node '([^']+)'")


def with_edit_notes(
    exc: SpecError, expansion: Expansion, source: Source, overrides: Sequence[Override] = ()
) -> SpecError:
    """`exc` with notes naming the edits outside its file that the failing node reads."""
    match = _NODE.search(exc.message)
    nodes = {raw.name: raw for raw in expansion.nodes}
    failing = nodes.get(match.group(1)) if match else None
    if failing is None or exc.location is None:
        return exc
    home = exc.location.file
    notes = default_notes(failing.defaulted)
    taken = [a for a, at in failing.defaulted.items() if at == exc.location]
    if taken:  # located at a default (shapes.py locates at the attribute): name the node
        notes = [
            *(f"'{a}' of node '{failing.name}' is set by 'defaults:' here" for a in taken),
            f"node '{failing.name}' is written at {failing.location}",
            *default_notes({a: at for a, at in failing.defaulted.items() if a not in taken}),
        ]
    edits: dict[Location, str] = {}
    by_location: dict[Location, list[PathKey]] = {}
    for path, location in source.where.values.items():
        by_location.setdefault(location, []).append(path)
    names: set[str] = set()
    for raw in _upstream(failing, nodes):
        for attr, location in raw.attr_locations.items():
            if location.file != home and attr not in raw.defaulted:
                edits.setdefault(location, f"'{attr}' of node '{raw.name}' is set at {location}")
        names |= _names(_at(source.data, raw.path))
        for instance, site in zip(raw.block, raw.trace, strict=False):
            for path in by_location.get(site, []):
                item = _at(source.data, path)
                if not isinstance(item, dict) or "use" not in item:
                    continue
                names |= _names(item)
                for key in item.get("args") or {}:
                    location = source.where.value((*path, "args", key))
                    if location.file != home:
                        text = f"argument '{key}' of block instance '{instance}' is set at"
                        edits.setdefault(location, f"{text} {location}")
    for override in overrides:
        if override.name in names and override.name in expansion.params:
            value = as_yaml(expansion.params[override.name])
            edits.setdefault(
                override.location,
                f"parameter '{override.name}' is {value}, set at {override.location}",
            )
    for name in sorted(names & set(expansion.params)):
        declared = source.where.values.get(("params", name, "default"))
        if declared is not None and declared.file != home and declared not in edits:
            value = as_yaml(expansion.params[name])
            if not any(o.name == name for o in overrides):
                edits[declared] = f"parameter '{name}' is {value}, set at {declared}"
    found = list(edits.values())
    if len(found) > MAX_NOTES:
        found = [*found[:MAX_NOTES], f"and {len(found) - MAX_NOTES} more edits upstream"]
    exc.notes = (*exc.notes, *notes, *found)
    return exc


def _upstream(node: RawNode, nodes: dict[str, RawNode]) -> Iterator[RawNode]:
    """`node`, then the nodes it depends on, nearest first."""
    seen = {node.name}
    queue = [node]
    while queue:
        raw = queue.pop(0)
        yield raw
        for ref in raw.inputs:
            if ref not in seen and ref in nodes:
                seen.add(ref)
                queue.append(nodes[ref])


def _at(data: Any, path: PathKey) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _names(value: Any) -> set[str]:
    """The names every `${...}` expression in `value` reads."""
    if isinstance(value, str):
        return names_in(value) if "${" in value else set()
    if isinstance(value, list):
        return set().union(*(_names(item) for item in value)) if value else set()
    if isinstance(value, dict):
        return set().union(*(_names(item) for item in value.values())) if value else set()
    return set()
