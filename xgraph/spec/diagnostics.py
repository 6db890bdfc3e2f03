"""Turning pydantic validation errors into located SpecErrors with useful hints."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, Tag, ValidationError
from pydantic_core import ErrorDetails

from xgraph.errors import SpecError, as_yaml, did_you_mean
from xgraph.spec.source import PathKey, SourceMap

_ITEM_TAGS = {"node", "use"}


def _data_path(loc: tuple[Any, ...], data: Any) -> PathKey:
    """Pydantic's loc reduced to the keys and indices that exist in `data`, so it matches the
    YAML paths: the branch names pydantic inserts for unions ('use', 'constrained-int',
    "literal['valid','same']", ...) are dropped."""
    path: list[str | int] = []
    current = data
    previous: Any = None
    for part in loc:
        is_item_tag = isinstance(previous, int) and part in _ITEM_TAGS
        in_dict = isinstance(current, dict) and part in current and not is_item_tag
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if in_dict or in_list:
            current = current[part]
            path.append(part)
        previous = part
    return tuple(path)


def _error_path(error: ErrorDetails, data: Any) -> PathKey:
    """The data path of an error; a missing key keeps its name as the last part."""
    loc = tuple(error["loc"])
    if error["type"] == "missing" and loc:
        return (*_data_path(loc[:-1], data), loc[-1])
    return _data_path(loc, data)


def _field_names(model: Any, loc: tuple[Any, ...]) -> list[str]:
    """The keys valid at pydantic's `loc` inside `model`, for 'did you mean' hints."""
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    current = _unwrap(current)
    return list(current.model_fields) if _is_model(current) else []


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _tag(annotation: Any) -> str | None:
    """The discriminator tag of a union member written `Annotated[Model, Tag("...")]`."""
    if typing.get_origin(annotation) is typing.Annotated:
        for meta in annotation.__metadata__:
            if isinstance(meta, Tag):
                return meta.tag
    return None


def _step(annotation: Any, part: str | int) -> Any:
    """The annotation of the value one key, index or union tag inside `annotation`."""
    annotation = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        tagged = [option for option in options if _tag(option) == part]
        if tagged:
            return tagged[0]
        for option in options:
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
    text = as_yaml(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _primary(errors: list[ErrorDetails]) -> ErrorDetails:
    """The error to report: a misspelt key shows up both as an unknown key and as a missing
    one, and the unknown key (whose hint names the missing one) says what went wrong."""
    first = errors[0]
    if first["type"] == "missing":
        first = next((e for e in errors if e["type"] == "extra_forbidden"), first)
    return first


def spec_error_from_validation(
    exc: ValidationError,
    where: SourceMap,
    model: Any,
    data: Any,
    base: PathKey = (),
    what: str = "key",
) -> SpecError:
    """The most telling error of `exc` as a SpecError located at the offending key or value.

    `data` is what was validated, found in the source at `base`.
    """
    return spec_error_from_errors(exc.errors(include_url=False), where, model, data, base, what)


def spec_error_from_errors(
    errors: list[ErrorDetails],
    where: SourceMap,
    model: Any,
    data: Any,
    base: PathKey = (),
    what: str = "key",
) -> SpecError:
    """As `spec_error_from_validation`, from a validation's errors (some left out)."""
    first = _primary(errors)
    loc = _error_path(first, data)
    # For a union, report the branch that matches the kind of value written.
    same_place = [e for e in errors if _error_path(e, data) == loc]
    if isinstance(first.get("input"), str):
        first = next((e for e in same_place if e["type"] == "literal_error"), first)
    path = (*base, *loc)
    kind = first["type"]
    if kind == "extra_forbidden":
        name = str(loc[-1])
        return SpecError(
            f"unknown {what} '{name}'",
            where.key(path),
            hint=did_you_mean(name, _field_names(model, tuple(first["loc"])[:-1])),
        )
    if kind == "missing":
        return SpecError(f"missing {what} '{loc[-1]}'", where.value(path[:-1]))
    if kind == "union_tag_not_found":
        return SpecError("a node needs 'op' (or 'use' to instantiate a block)", where.value(path))
    field = ".".join(str(p) for p in loc)
    message = first["msg"].replace("Value error, ", "").replace(" after validation", "")
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
    return SpecError(f"'{field}': {message}" if field else message, where.value(path))
