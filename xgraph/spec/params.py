"""Spec parameters: typing their values, and reading `--set NAME=VALUE` overrides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xgraph.budgets import BudgetError, Budgets, active_budgets
from xgraph.errors import Location, SpecError, as_yaml, did_you_mean
from xgraph.spec.model import ParamDecl
from xgraph.spec.source import PathKey, SourceMap, parse_yaml


@dataclass(frozen=True)
class Argument:
    """A value given for a parameter, where it was written, and where its name was."""

    value: Any
    location: Location
    name_location: Location


@dataclass(frozen=True)
class Override:
    """One `--set NAME=VALUE`: the value read as YAML, and where it was written."""

    name: str
    value: Any
    location: Location

    @property
    def argument(self) -> Argument:
        return Argument(
            self.value, self.location, Location(self.location.file, self.location.line, 1)
        )


def parse_overrides(assignments: Sequence[str], budgets: Budgets | None = None) -> list[Override]:
    """Read `--set` arguments; the i-th one is located as `--set:i:column`."""
    budgets = active_budgets(budgets)
    overrides = []
    for index, text in enumerate(assignments, start=1):
        name, equals, raw = text.partition("=")
        name = name.strip()
        if not equals or not name:
            raise SpecError(
                f"--set needs NAME=VALUE, got '{_short(text)}'",
                Location("--set", index, 1),
                hint="for example: --set include_top=false",
            )
        value_location = Location("--set", index, len(text) - len(raw) + 1)
        try:  # read as a spec's values are: a date-like word stays a string, tags refused
            value = parse_yaml(raw, "--set", budgets).data if raw.strip() else ""
        except BudgetError as exc:  # too large a value: the same error, at the --set
            raise BudgetError(exc.limit, exc.reason, value_location) from None
        except SpecError as exc:
            raise SpecError(
                f"cannot read '{_short(raw)}' as a YAML value",
                value_location,
                notes=[exc.message],
            ) from None
        overrides.append(Override(name, value, value_location))
    return overrides


def _short(text: str) -> str:
    """A value as given, cut for a message."""
    return text if len(text) <= 60 else text[:57] + "..."


def check_param_value(name: str, decl: ParamDecl, value: Any, max_length: int | None = None) -> Any:
    """`value` as the declared type, or a ValueError saying why it does not fit."""
    kind = decl.type
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    expected: dict[str, type | tuple[type, ...]] = {
        "int": int,
        "float": float,
        "bool": bool,
        "str": str,
        "shape": list,
    }
    if not isinstance(value, expected[kind]) or (kind == "int" and isinstance(value, bool)):
        article = "an" if kind == "int" else "a"
        raise ValueError(f"parameter '{name}' is {article} {kind}, got {_short(as_yaml(value))}")
    # From here on the value is of the kind's type: a shape is the list, a str the string.
    if isinstance(value, list) and not (
        1 <= len(value) <= 3
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    ):
        raise ValueError(
            f"parameter '{name}' is a shape: 1 to 3 positive integers such as [299, 299, 3], "
            f"got {_short(as_yaml(value))}"
        )
    max_length = active_budgets().value_length if max_length is None else max_length
    if isinstance(value, str) and len(value) > max_length:
        raise _TooLong(
            f"parameter '{name}' is a string of {len(value):,} characters, more than {max_length:,}"
        )
    if decl.choices is not None and value not in decl.choices:
        choices = ", ".join(as_yaml(c) for c in decl.choices)
        raise ValueError(
            f"parameter '{name}' must be one of {_short(choices)}, got {_short(as_yaml(value))}"
        )
    # Numbers declare numeric bounds, shapes lists of sizes (ParamDecl checks that).
    if isinstance(value, list):
        _check_dimensions(name, decl, value)
    elif isinstance(value, int | float):
        if isinstance(decl.min, int | float) and value < decl.min:
            raise ValueError(
                f"parameter '{name}' must be at least {decl.min:g}, got {as_yaml(value)}"
            )
        if isinstance(decl.max, int | float) and value > decl.max:
            raise ValueError(
                f"parameter '{name}' must be at most {decl.max:g}, got {as_yaml(value)}"
            )
    return value


def _check_dimensions(name: str, decl: ParamDecl, value: list[int]) -> None:
    """A shape within its declared sizes: `min: [71, 71]` bounds the first two dimensions."""
    for bound, word in ((decl.min, "at least"), (decl.max, "at most")):
        if not isinstance(bound, list):
            continue
        pairs = list(zip(value, bound, strict=False))
        if any(v < b if word == "at least" else v > b for v, b in pairs):
            reason = f": {decl.doc}" if decl.doc else ""
            raise ValueError(
                f"parameter '{name}' must be {word} {as_yaml(bound)} in its first "
                f"{len(bound)} dimensions, got {as_yaml(value)}{reason}"
            )


class _TooLong(ValueError):
    """A string parameter longer than the `value_length` budget."""


def bind_params(
    decls: Mapping[str, ParamDecl],
    given: Mapping[str, Argument],
    where: SourceMap,
    base: PathKey,
    what: str,
    site: Location | None = None,
    reserved: tuple[str, ...] = (),
    budgets: Budgets | None = None,
) -> dict[str, Any]:
    """Parameter values: the given ones checked against their declarations, then defaults.

    The declarations are found in the source at `base`; `site` is where a block is
    instantiated, the place to fix when it leaves out a parameter without a default.
    """
    budgets = active_budgets(budgets)
    for name in decls:
        if not name.isidentifier() or name in reserved:
            reason = (
                f"is bound by {what} itself"
                if name.isidentifier()
                else "is not a name an expression can use (letters, digits and '_')"
            )
            raise SpecError(f"parameter name '{name}' {reason}", where.key((*base, name)))
    values: dict[str, Any] = {}
    for name, argument in given.items():
        value, location = argument.value, argument.location
        if name not in decls:
            known = ", ".join(decls) or "none"
            raise SpecError(
                f"unknown parameter '{name}' for {what} (parameters: {known})",
                argument.name_location,
                hint=did_you_mean(name, decls),
            )
        try:
            values[name] = check_param_value(name, decls[name], value, budgets.value_length)
        except _TooLong as exc:
            raise budgets.exceeded("value_length", str(exc), location) from None
        except ValueError as exc:
            hint = None
            choices = decls[name].choices
            if isinstance(value, str) and choices:
                hint = did_you_mean(value, [str(c) for c in choices])
            raise SpecError(str(exc), location, hint=hint) from None
    for name, decl in decls.items():
        if name in values:
            continue
        if "default" not in decl.model_fields_set:
            declared = where.key((*base, name))
            message = f"parameter '{name}' of {what} has no default and is not set"
            if site is not None:
                raise SpecError(
                    message,
                    site,
                    hint=f"pass it in 'args', such as args: {{{name}: ...}}",
                    notes=[f"'{name}' is declared at {declared}"],
                )
            raise SpecError(message, declared, hint=f"give it a default or --set {name}=VALUE")
        try:
            values[name] = check_param_value(name, decl, decl.default, budgets.value_length)
        except _TooLong as exc:
            default = where.value((*base, name, "default"))
            raise budgets.exceeded("value_length", f"default of {exc}", default) from None
        except ValueError as exc:
            raise SpecError(f"default of {exc}", where.value((*base, name, "default"))) from None
    return values
