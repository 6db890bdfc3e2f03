"""Budgets: how much work and memory one spec may cause, each limit named and settable.

A spec is untrusted input: a few KiB of YAML can ask for billions of nodes, strings or
weights. The front end counts what it does against these limits and refuses, at the place
in the spec that asked for too much, naming the limit and how to raise it. The defaults
leave real networks far below every limit (Xception: 5.5 KB, 134 nodes, 23M parameters),
and keep the worst input within about a second and a few hundred MB.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from xgraph.errors import Location, SpecError, did_you_mean


class BudgetError(SpecError):
    """A spec that asks for more than a budget allows; `limit` names the budget."""

    def __init__(
        self,
        limit: str,
        message: str,
        location: Location | None = None,
        notes: Sequence[str] = (),
    ) -> None:
        super().__init__(
            f"{message} (limit '{limit}')",
            location,
            hint=f"raise it if this is meant: --limit {limit}=N, or Budgets({limit}=N) in "
            "the Python API",
            notes=notes,
        )
        self.limit = limit
        self.reason = message


def _limit(default: int, unit: str, reason: str, ceiling: int | None = None) -> Any:
    """A budget field: its default, what it counts, and why it is there."""
    return field(default=default, metadata={"unit": unit, "reason": reason, "ceiling": ceiling})


@dataclass(frozen=True)
class Budgets:
    """The limits one compilation of a spec runs under (docs/spec.md, "Safety limits")."""

    source_bytes: int = _limit(
        262_144, "bytes", "a spec is a few KiB; the reader stops here whatever the file claims"
    )
    yaml_values: int = _limit(
        20_000,
        "values",
        "YAML values after alias expansion: bounds parsing and alias bombs (Inception v3: 551)",
    )
    yaml_depth: int = _limit(64, "levels", "YAML nesting; a spec nests about 8 levels", ceiling=200)
    extends_depth: int = _limit(8, "files", "links in a chain of 'extends'")
    expression_depth: int = _limit(
        50,
        "levels",
        "nesting of one ${...} expression, long chains of '+' or 'not' included",
        ceiling=200,
    )
    value_length: int = _limit(
        1_000,
        "characters or items",
        "a string or list that an expression makes, or a string parameter; names are short",
    )
    integer_digits: int = _limit(
        18,
        "digits",
        "any integer in a spec or made by an expression (int64 holds 18 digits)",
        ceiling=4_000,
    )
    expansion_steps: int = _limit(
        1_000_000,
        "steps",
        "work of expansion: items (switched off or not), repetitions, expression operations",
    )
    nodes: int = _limit(
        20_000,
        "nodes",
        "nodes after expansion (Inception v3: 313); a spec at the limit validates in a second",
    )
    activation_elements: int = _limit(
        1_000_000_000,
        "elements",
        "one node's output for one example, 4 GB as float32 (Xception's largest: 2,765,952)",
    )
    param_elements: int = _limit(
        500_000_000,
        "elements",
        "elements of one weight tensor (VGG16's largest: 102,760,448)",
    )
    total_param_elements: int = _limit(
        1_000_000_000,
        "elements",
        "parameters of the whole model, 4 GB as float32 (VGG16: 138,357,544)",
    )

    def __post_init__(self) -> None:
        for limit in dataclasses.fields(self):
            value = getattr(self, limit.name)
            ceiling = limit.metadata["ceiling"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"limit '{limit.name}' must be a whole number >= 1, got {value!r}")
            if ceiling is not None and value > ceiling:
                raise ValueError(f"limit '{limit.name}' can be at most {ceiling:,}, got {value:,}")

    def exceeded(
        self, name: str, message: str, location: Location | None = None, notes: Sequence[str] = ()
    ) -> BudgetError:
        """The error for going over limit `name`: the message names the limit, the hint says
        how to raise it."""
        assert name in LIMIT_NAMES, name
        return BudgetError(name, message, location, notes)


DEFAULT_BUDGETS = Budgets()
LIMITS: tuple[dataclasses.Field[Any], ...] = dataclasses.fields(Budgets)
LIMIT_NAMES: tuple[str, ...] = tuple(limit.name for limit in LIMITS)

# The budgets of the command being run: `xgraph --limit` sets them once for every spec the
# command reads, `extends` bases and code generation's second reading included.
_ACTIVE: ContextVar[Budgets] = ContextVar("xgraph_budgets", default=DEFAULT_BUDGETS)


def active_budgets(budgets: Budgets | None = None) -> Budgets:
    """`budgets` if given, else those in force (`using_budgets`), else the defaults."""
    return budgets if budgets is not None else _ACTIVE.get()


@contextmanager
def using_budgets(budgets: Budgets) -> Iterator[Budgets]:
    """Make `budgets` those in force, for every spec read inside the `with` block."""
    token = _ACTIVE.set(budgets)
    try:
        yield budgets
    finally:
        _ACTIVE.reset(token)


def parse_limits(assignments: Sequence[str], base: Budgets = DEFAULT_BUDGETS) -> Budgets:
    """`base` with `--limit NAME=VALUE` settings applied; the i-th is located `--limit:i:COL`."""
    changes: dict[str, int] = {}
    for index, text in enumerate(assignments, start=1):
        name, equals, raw = text.partition("=")
        name = name.strip()
        location = Location("--limit", index, 1)
        if not equals or not name:
            raise SpecError(
                f"--limit needs NAME=VALUE, got '{text[:80]}'",
                location,
                hint="for example: --limit nodes=100000",
            )
        if name not in LIMIT_NAMES:
            raise SpecError(
                f"unknown limit '{name}' (limits: {', '.join(LIMIT_NAMES)})",
                location,
                hint=did_you_mean(name, LIMIT_NAMES),
            )
        if name in changes:
            raise SpecError(f"--limit sets '{name}' twice", location)
        value_location = Location("--limit", index, len(text) - len(raw) + 1)
        digits = raw.strip().replace("_", "").replace(",", "")
        if not digits.isdigit() or len(digits) > 30:
            raise SpecError(
                f"limit '{name}' needs a whole number, got '{raw.strip()[:80]}'", value_location
            )
        changes[name] = int(digits)
        try:
            dataclasses.replace(base, **{name: changes[name]})
        except ValueError as exc:
            raise SpecError(str(exc), value_location) from None
    return dataclasses.replace(base, **changes)
