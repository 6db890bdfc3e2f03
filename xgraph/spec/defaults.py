"""Spec-wide defaults: per op, attribute values for every node that does not set them.

`defaults: {batch_norm: {momentum: 0.9}}` says once what a spec would otherwise repeat on
each node (blocks' nodes included). The values are checked here, against the op's attribute
model, so a wrong one is reported where it is written, not at the first node it reaches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from xgraph.errors import Location, SpecError, did_you_mean
from xgraph.ops import REGISTRY
from xgraph.spec.diagnostics import spec_error_from_errors
from xgraph.spec.params import Override
from xgraph.spec.source import PathKey, SourceMap


@dataclass(frozen=True, slots=True)
class Default:
    """One default attribute value (`${...}` resolved) and where it was written."""

    value: Any
    location: Location


Defaults = Mapping[str, Mapping[str, Default]]  # op -> attribute -> default


def resolve_defaults(
    declared: Mapping[str, Mapping[str, Any]],
    where: SourceMap,
    resolve: Callable[..., Any],
) -> dict[str, dict[str, Default]]:
    """The `defaults:` section resolved (`resolve(value, path=...)` evaluates a value written
    at a path) and checked: each op exists, and each value fits that op's attribute."""
    result: dict[str, dict[str, Default]] = {}
    for op, values in declared.items():
        opdef = REGISTRY.get(op)
        if opdef is None or op == "input":
            reason = "inputs are declared under 'inputs'" if op == "input" else None
            raise SpecError(
                f"unknown op '{op}' in 'defaults'",
                where.key(("defaults", op)),
                hint=reason or did_you_mean(op, [name for name in REGISTRY if name != "input"]),
            )
        base: PathKey = ("defaults", op)
        resolved = {attr: resolve(value, path=(*base, attr)) for attr, value in values.items()}
        try:
            opdef.attrs.model_validate(resolved)
        except ValidationError as exc:
            # Attributes a node must set itself (a conv's filters) are not missing here.
            errors = [e for e in exc.errors(include_url=False) if e["type"] != "missing"]
            if errors:
                error = spec_error_from_errors(
                    errors, where, opdef.attrs, resolved, base=base, what="attribute"
                )
                message = error.message
                if message.startswith("unknown attribute"):
                    message = f"{message} for op '{op}'"
                raise SpecError(
                    f"defaults of '{op}': {message}", error.location, hint=error.hint
                ) from None
        result[op] = {
            attr: Default(value, where.value((*base, attr))) for attr, value in resolved.items()
        }
    return result


def default_notes(defaulted: Mapping[str, Location], attrs: tuple[str, ...] = ()) -> list[str]:
    """Notes naming where the defaults a node took were written: those of `attrs`, or all
    of them when `attrs` is empty (an error about the node as a whole)."""
    names = [a for a in attrs if a in defaulted] if attrs else list(defaulted)
    return [f"'{name}' is set by 'defaults:' at {defaulted[name]}" for name in names]


DEFAULTS_PREFIX = "defaults."


def is_default_override(name: str) -> bool:
    """Whether a `--set` name sets a spec-wide default (`defaults.OP.ATTR`), not a parameter."""
    return name.startswith(DEFAULTS_PREFIX)


def override_defaults(
    defaults: Mapping[str, Mapping[str, Default]], overrides: Sequence[Override]
) -> dict[str, dict[str, Default]]:
    """`defaults` with the `--set defaults.OP.ATTR=VALUE` among `overrides` applied: each
    value checked against the op's attribute, as one under `defaults:` is, located at its
    --set."""
    result = {op: dict(values) for op, values in defaults.items()}
    for override in (o for o in overrides if is_default_override(o.name)):
        parts = override.name.split(".")
        name_at = Location(override.location.file, override.location.line, 1)
        if len(parts) != 3 or not all(parts):
            raise SpecError(
                f"--set '{override.name}' names no spec-wide default",
                name_at,
                hint="write --set defaults.OP.ATTRIBUTE=VALUE, "
                "for example --set defaults.batch_norm.momentum=0.9",
            )
        _, op, attr = parts
        opdef = REGISTRY.get(op)
        if opdef is None or op == "input":
            raise SpecError(
                f"unknown op '{op}' in --set '{override.name}'",
                name_at,
                hint=did_you_mean(op, [name for name in REGISTRY if name != "input"]),
            )
        if attr not in opdef.attrs.model_fields:
            raise SpecError(
                f"op '{op}' has no attribute '{attr}'",
                name_at,
                hint=did_you_mean(attr, list(opdef.attrs.model_fields)),
            )
        at_set = SourceMap(override.location.file, {(): override.location})
        resolve_defaults({op: {attr: override.value}}, at_set, lambda value, path: value)
        result.setdefault(op, {})[attr] = Default(override.value, override.location)
    return result
