"""Turning pydantic validation errors into located SpecErrors with useful hints."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from xgraph.errors import SpecError, did_you_mean
from xgraph.spec.source import PathKey, SourceMap

_UNION_TAGS = {"node", "use"}


def _data_path(loc: tuple[Any, ...]) -> PathKey:
    """Pydantic's loc without the union-branch tags it inserts, so it matches the YAML paths."""
    return tuple(
        part
        for part in loc
        if not (
            isinstance(part, str)
            and (part in _UNION_TAGS or part.startswith(("literal[", "tuple[")))
        )
        and part not in ("int", "str", "bool", "float", "list[...]", "function-after[...]")
    )


def _field_names(model: Any, path: PathKey) -> list[str]:
    """The keys valid at `path` inside `model`, for 'did you mean' hints."""
    current: Any = model
    for part in path:
        current = _step(current, part)
        if current is None:
            return []
    return list(current.model_fields) if _is_model(current) else []


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _step(annotation: Any, part: str | int) -> Any:
    """The annotation of the value one key or index inside `annotation`."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            found = _step(option, part)
            if found is not None:
                return found
        return None
    if _is_model(annotation) and isinstance(part, str) and part in annotation.model_fields:
        return annotation.model_fields[part].annotation
    if origin is list and isinstance(part, int):
        return typing.get_args(annotation)[0]
    if origin is dict and isinstance(part, str):
        return typing.get_args(annotation)[1]
    return None


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def spec_error_from_validation(
    exc: ValidationError, where: SourceMap, model: Any, base: PathKey = (), what: str = "key"
) -> SpecError:
    """The first error of `exc` as a SpecError located at the offending key or value."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = _data_path(first["loc"])
    # For a union, report the branch that matches the kind of value written.
    same_place = [e for e in errors if _data_path(e["loc"]) == loc]
    if isinstance(first.get("input"), str):
        first = next((e for e in same_place if e["type"] == "literal_error"), first)
    path = (*base, *loc)
    kind = first["type"]
    if kind == "extra_forbidden":
        name = str(loc[-1])
        return SpecError(
            f"unknown {what} '{name}'",
            where.key(path),
            hint=did_you_mean(name, _field_names(model, loc[:-1])),
        )
    if kind == "missing":
        return SpecError(f"missing {what} '{loc[-1]}'", where.value(path[:-1]))
    if kind == "union_tag_not_found":
        return SpecError("a node needs 'op' (or 'use' to instantiate a block)", where.value(path))
    field = ".".join(str(p) for p in loc) or "value"
    message = first["msg"].replace("Value error, ", "")
    if kind == "literal_error" and isinstance(first.get("input"), str):
        expected = first.get("ctx", {}).get("expected", "")
        options = [o.strip(" '") for o in expected.replace(" or ", ",").split(",") if o.strip()]
        hint = did_you_mean(first["input"], options)
        return SpecError(
            f"'{field}': {_describe(first['input'])} is not allowed; expected {expected}",
            where.value(path),
            hint=hint,
        )
    if "input" in first and kind != "value_error":
        message = f"{message}, got {_describe(first['input'])}"
    return SpecError(f"'{field}': {message}", where.value(path))
