"""From a loaded spec to the analysed graph: validate, expand, check attributes and references."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Protocol

from pydantic import ValidationError

from xgraph.budgets import Budgets, active_budgets
from xgraph.errors import SpecError, did_you_mean
from xgraph.ir.analysis import AnalysedGraph, analyse
from xgraph.ir.graph import Graph, Node
from xgraph.ops import REGISTRY
from xgraph.spec.defaults import default_notes
from xgraph.spec.diagnostics import spec_error_from_validation
from xgraph.spec.edits import with_edit_notes
from xgraph.spec.expand import Expansion, RawNode, expand
from xgraph.spec.model import SPEC_VERSION, Spec
from xgraph.spec.params import Override
from xgraph.spec.source import Source, SourceMap


class SectionCompiler(Protocol):
    """Compiles one of the spec's sections beside the graph (`training:`), owned by another
    package (xgraph.training.section), so the spec language does not depend on it. It gets the
    section (`${...}` resolved, None when absent), where the spec's text is, and the `--set`
    overrides whose name starts with the section's."""

    def __call__(self, section: Any, where: SourceMap, overrides: Sequence[Override]) -> Any: ...


def _section_of(override: Override, sections: Mapping[str, SectionCompiler]) -> str | None:
    head = override.name.split(".", 1)[0]
    return head if head in sections else None


def validate_structure(source: Source) -> Spec:
    """The spec's structure checked against the spec language's models."""
    data = source.data
    if not isinstance(data, dict):
        raise SpecError(
            "a spec is a mapping with keys 'xgraph', 'name', 'inputs' and 'nodes'",
            source.where.value(()),
        )
    if "xgraph" in data and data["xgraph"] != SPEC_VERSION:
        raise SpecError(
            f"unsupported spec version {data['xgraph']!r}: "
            f"this xgraph reads version {SPEC_VERSION}",
            source.where.value(("xgraph",)),
        )
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise spec_error_from_validation(exc, source.where, Spec, data) from None


def _frozen(value: Any) -> Hashable:
    """Raw attribute data as a hashable key; types kept apart, as strict validation keeps
    them (1, 1.0 and true are different attribute values)."""
    if isinstance(value, list):
        return (list, tuple(_frozen(item) for item in value))
    if isinstance(value, dict):
        return (dict, tuple((key, _frozen(item)) for key, item in value.items()))
    return (type(value), value)


def checked_node(
    raw: RawNode, where: SourceMap, checked: dict[Hashable, Any] | None = None
) -> Node:
    """A raw node whose op exists and whose attributes fit that op's attribute model.

    `checked` caches validated attributes: the nodes of a repeated block have the same
    ones, validated once and then shared (attributes are immutable)."""
    opdef = REGISTRY.get(raw.op)
    if opdef is None:
        raise SpecError(
            f"unknown op '{raw.op}'",
            where.value((*raw.path, "op")) if raw.path else raw.location,
            hint=did_you_mean(raw.op, REGISTRY),
            notes=_trace(raw),
        )
    try:
        attrs = None if checked is None else checked.get((raw.op, id(raw.attrs)))
        if attrs is None:
            key = (raw.op, _frozen(raw.attrs)) if checked is not None else None
            attrs = checked.get(key) if checked is not None else None
            if attrs is None:
                attrs = opdef.attrs.model_validate(raw.attrs)
            if checked is not None:
                # An expansion shares one attributes dict among nodes where nothing varies
                # (and keeps it alive): its id is a key too.
                checked[key] = checked[(raw.op, id(raw.attrs))] = attrs
    except ValidationError as exc:
        error = spec_error_from_validation(
            exc, where, opdef.attrs, raw.attrs, base=raw.path, what="attribute"
        )
        message = error.message
        if message.startswith("unknown attribute"):
            message = f"{message} for op '{raw.op}'"
        kind = "input" if raw.op == "input" else "node"
        fields = tuple(str(e["loc"][0]) for e in exc.errors() if e["loc"])
        raise SpecError(
            f"{kind} '{raw.name}': {message}",
            error.location or raw.location,
            hint=error.hint,
            notes=[*default_notes(raw.defaulted, fields), *_trace(raw)],
        ) from None
    return Node(
        name=raw.name,
        op=raw.op,
        attrs=attrs,
        inputs=raw.inputs,
        location=raw.location,
        block=raw.block,
        attr_locations=raw.attr_locations,
        block_uses=raw.block_uses,
        param_refs=raw.param_refs,
    )


def _trace(raw: RawNode) -> list[str]:
    return [f"in the block instantiated at {location}" for location in reversed(raw.trace)]


def check_names(expansion: Expansion) -> None:
    """Node names are unique; every reference names a node."""
    seen: dict[str, RawNode] = {}
    for raw in expansion.nodes:
        if raw.name in seen:
            first = seen[raw.name]
            hint = None
            if first.location == raw.location:
                hint = (
                    "this node is made twice from the same line: give each block instance "
                    "its own name (with 'repeat', put the index in it, such as 'unit${i}')"
                )
            raise SpecError(
                f"duplicate node name '{raw.name}'",
                raw.location,
                hint=hint,
                notes=[f"first defined at {first.location}", *_trace(raw)],
            )
        seen[raw.name] = raw
    for raw in expansion.nodes:
        for ref, location in zip(raw.inputs, raw.input_locations, strict=True):
            if ref not in seen:
                raise SpecError(
                    f"node '{raw.name}' takes input from unknown node '{ref}'",
                    location,
                    hint=did_you_mean(ref, seen),
                    notes=_trace(raw),
                )
    listed: set[str] = set()
    for ref, location in expansion.outputs:
        if ref not in seen:
            raise SpecError(f"output '{ref}' is not a node", location, hint=did_you_mean(ref, seen))
        if ref in listed:
            raise SpecError(f"output '{ref}' is listed twice", location)
        listed.add(ref)


def compile_source(
    source: Source,
    overrides: Sequence[Override] = (),
    budgets: Budgets | None = None,
    sections: Mapping[str, SectionCompiler] | None = None,
) -> AnalysedGraph:
    """The whole front end: structure, expansion, attributes, references, then the passes,
    all within `budgets`; the `sections` beside the graph by the compilers given."""
    sections = sections or {}
    budgets = active_budgets(budgets)
    if isinstance(source.data, dict) and "extends" in source.data:  # text held in memory
        from xgraph.spec.extends import resolve_extends

        source = resolve_extends(source, budgets)
    spec = validate_structure(source)
    graph_overrides = [o for o in overrides if _section_of(o, sections) is None]
    expansion = expand(spec, source.where, graph_overrides, budgets)
    raw_sections = {"training": expansion.training, "search": spec.search}
    compiled = {
        name: compile_section(
            raw_sections.get(name),
            source.where,
            [o for o in overrides if _section_of(o, sections) == name],
        )
        for name, compile_section in sections.items()
    }
    check_names(expansion)
    checked: dict[Hashable, Any] = {}
    nodes = [checked_node(raw, source.where, checked) for raw in expansion.nodes]
    inputs = tuple(node.name for node in nodes if node.op == "input")
    outputs = tuple(ref for ref, _ in expansion.outputs)
    graph = Graph(
        expansion.name, nodes, inputs, outputs, expansion.initializer, expansion.description
    )
    if expansion.defaults:  # shown by `xgraph summary`
        compiled["defaults"] = {
            op: {attr: d.value for attr, d in values.items()}
            for op, values in expansion.defaults.items()
        }
    try:
        return analyse(graph, expansion.params, budgets, compiled)
    except SpecError as exc:
        raise with_edit_notes(exc, expansion, source, graph_overrides) from None
