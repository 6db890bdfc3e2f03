"""What expansion produces: raw nodes (attributes not yet checked against their ops) with
the provenance code generation keeps, and the checks expansion makes on its own input."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from xgraph.errors import Location, SpecError
from xgraph.spec.defaults import Default, is_default_override
from xgraph.spec.expressions import direct_name, names_in
from xgraph.spec.model import NodeItem, Spec
from xgraph.spec.params import Argument, Override
from xgraph.spec.source import PathKey


@dataclass(slots=True)
class RawNode:
    """A node after expansion, before its attributes are checked against its op."""

    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: dict[str, Any]
    location: Location
    attr_locations: Mapping[str, Location] = field(default_factory=dict)
    input_locations: tuple[Location, ...] = ()
    block: tuple[str, ...] = ()
    trace: tuple[Location, ...] = ()
    path: PathKey = ()  # where the node was written, to locate errors inside its attributes
    block_uses: tuple[str, ...] = ()  # the block each instance of `block` instantiates
    param_refs: Mapping[str, str] = field(default_factory=dict)  # attribute -> spec parameter
    defaulted: Mapping[str, Location] = field(default_factory=dict)  # attribute -> `defaults:`


@dataclass
class Expansion:
    name: str
    params: dict[str, Any]
    nodes: list[RawNode]
    outputs: list[tuple[str, Location]]
    initializer: str
    training: dict[str, Any] | None = None  # `${...}` resolved; checked by xgraph.training
    description: str = ""
    defaults: Mapping[str, Mapping[str, Default]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NodePlan:
    """A node item's location, its attributes' locations, and its attributes split into
    those that hold no expression (the same in every instance) and the others."""

    location: Location
    constant: dict[str, Any]
    varying: list[tuple[str, Any]]
    attr_locations: dict[str, Location]
    direct: dict[str, str]  # attribute -> the name its value is exactly (`${classes}`)
    defaulted: dict[str, Location]  # attribute -> where the `defaults:` value was written


def with_defaults(
    attrs: dict[str, Any], defaults: Mapping[str, Default]
) -> tuple[dict[str, Any], dict[str, Location]]:
    """A node's attributes with the op's defaults for those it does not set, and where
    each default taken was written."""
    taken = {name: d for name, d in defaults.items() if name not in attrs}
    if not taken:
        return attrs, {}
    merged = {**attrs, **{name: d.value for name, d in taken.items()}}
    return merged, {name: d.location for name, d in taken.items()}


def has_expressions(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, list):
        return any(has_expressions(item) for item in value)
    if isinstance(value, dict):
        return any(has_expressions(item) for item in value.values())
    return False


def check_overrides(overrides: list[Override]) -> dict[str, Argument]:
    """Each parameter set once: with two `--set` of one name, which one is meant is unclear.
    The parameters set, by name (a spec-wide default's `--set` is checked, not returned)."""
    given: dict[str, Argument] = {}
    first: dict[str, Location] = {}
    for override in overrides:
        if override.name in given:
            raise SpecError(
                f"--set sets '{override.name}' twice",
                Location(override.location.file, override.location.line, 1),
                hint="keep one of them",
                notes=[f"first set at {first[override.name]}"],
            )
        given[override.name] = override.argument
        first[override.name] = Location(override.location.file, override.location.line, 1)
    return {name: argument for name, argument in given.items() if not is_default_override(name)}


def keep_direct_only(spec: Spec, nodes: list[RawNode]) -> None:
    """Drop the provenance of every parameter the spec reads in any other way (a name, a
    `when`, a shape, a block's argument, a larger expression): changing it changes more
    than the values recorded, so code generation must resolve it."""
    direct = {
        ("nodes", index, key)
        for index, item in enumerate(spec.nodes)
        if isinstance(item, NodeItem)
        for key, value in (item.model_extra or {}).items()
        if direct_name(value)
    }
    other: set[str] = set()

    def walk(value: Any, path: PathKey) -> None:
        if isinstance(value, str):
            if "${" in value and path not in direct:
                other.update(names_in(value))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*path, index))
        elif isinstance(value, dict | BaseModel):  # a model's fields, extras included
            for key, item in value.items() if isinstance(value, dict) else value:
                walk(item, (*path, key))

    walk(spec, ())
    if not other:
        return
    for node in nodes:
        if node.param_refs and ("*" in other or other & set(node.param_refs.values())):
            node.param_refs = {k: n for k, n in node.param_refs.items() if n not in other}
