"""From a loaded spec to the analysed graph: validate, expand, check attributes and references."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from xgraph.analysis import AnalysedGraph, analyse
from xgraph.errors import SpecError, did_you_mean
from xgraph.graph import Graph, Node
from xgraph.ops import REGISTRY
from xgraph.spec.diagnostics import spec_error_from_validation
from xgraph.spec.expand import Expansion, RawNode, expand
from xgraph.spec.model import SPEC_VERSION, Spec
from xgraph.spec.params import Override
from xgraph.spec.source import Source, SourceMap


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


def checked_node(raw: RawNode, where: SourceMap) -> Node:
    """A raw node whose op exists and whose attributes fit that op's attribute model."""
    opdef = REGISTRY.get(raw.op)
    if opdef is None:
        raise SpecError(
            f"unknown op '{raw.op}'",
            where.value((*raw.path, "op")) if raw.path else raw.location,
            hint=did_you_mean(raw.op, REGISTRY),
            notes=_trace(raw),
        )
    try:
        attrs = opdef.attrs.model_validate(raw.attrs)
    except ValidationError as exc:
        error = spec_error_from_validation(
            exc, where, opdef.attrs, raw.attrs, base=raw.path, what="attribute"
        )
        message = error.message
        if message.startswith("unknown attribute"):
            message = f"{message} for op '{raw.op}'"
        kind = "input" if raw.op == "input" else "node"
        raise SpecError(
            f"{kind} '{raw.name}': {message}",
            error.location or raw.location,
            hint=error.hint,
            notes=_trace(raw),
        ) from None
    return Node(
        name=raw.name,
        op=raw.op,
        attrs=attrs,
        inputs=raw.inputs,
        location=raw.location,
        block=raw.block,
        attr_locations=raw.attr_locations,
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


def compile_source(source: Source, overrides: Sequence[Override] = ()) -> AnalysedGraph:
    """The whole front end: structure, expansion, attributes, references, then the passes."""
    if isinstance(source.data, dict) and "extends" in source.data:  # text held in memory
        from xgraph.spec.extends import resolve_extends

        source = resolve_extends(source)
    spec = validate_structure(source)
    expansion = expand(spec, source.where, list(overrides))
    check_names(expansion)
    nodes = [checked_node(raw, source.where) for raw in expansion.nodes]
    inputs = tuple(node.name for node in nodes if node.op == "input")
    outputs = tuple(ref for ref, _ in expansion.outputs)
    graph = Graph(expansion.name, nodes, inputs, outputs, expansion.initializer)
    return analyse(graph, expansion.params)
