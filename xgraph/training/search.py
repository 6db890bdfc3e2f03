"""The `search:` section: what `xgraph tune` searches, a spec parameter or a `training.*`
setting per entry, each a choice, an integer range or a float range (`log` for a range
searched on a log scale), compiled here with every error located at its entry. Whether a
name is a parameter of the spec and each bound a value it takes is checked by `xgraph
tune` (xgraph.tuning.checks), which compiles the spec with them."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from xgraph.errors import Location, SpecError
from xgraph.spec.diagnostics import spec_error_from_validation
from xgraph.spec.params import Override
from xgraph.spec.source import SourceMap

Scalar = bool | int | float | str
_NAME = re.compile(r"^(training(\.[A-Za-z_][A-Za-z0-9_]*)+|[A-Za-z_][A-Za-z0-9_]*)$")


class Dimension(BaseModel):
    """One entry: `{choice: [a, b]}`, `{int: [low, high], step: 2}` or `{float: [low,
    high], log: true}`; the bounds are included."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    choice: Annotated[list[Scalar], Field(min_length=1)] | None = None
    int_range: tuple[int, int] | None = Field(None, alias="int")
    float_range: tuple[float, float] | None = Field(None, alias="float")
    log: bool = False
    step: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Dimension:
        kinds = [k for k in ("choice", "int", "float") if self.given(k) is not None]
        if len(kinds) != 1:
            raise ValueError("give one of 'choice', 'int' or 'float'")
        bounds = self.bounds
        if bounds is None:
            if self.log or self.step is not None:
                raise ValueError("'log' and 'step' are for an 'int' or 'float' range")
            if len(set(map(repr, self.choice or []))) != len(self.choice or []):
                raise ValueError("a choice lists each value once")
            return self
        low, high = bounds
        if not low < high:
            raise ValueError(f"a range needs low < high, got [{low}, {high}]")
        if self.log and low <= 0:
            raise ValueError(f"a range searched on a log scale starts above 0, got {low}")
        if self.log and self.step is not None:
            raise ValueError("'step' and 'log' do not go together (Optuna's rule)")
        if self.int_range is not None and self.step is not None and self.step != int(self.step):
            raise ValueError(f"an 'int' range takes a whole step, got {self.step}")
        return self

    def given(self, kind: str) -> Any:
        return {"choice": self.choice, "int": self.int_range, "float": self.float_range}[kind]

    @property
    def kind(self) -> str:
        return next(k for k in ("choice", "int", "float") if self.given(k) is not None)

    @property
    def bounds(self) -> tuple[float, float] | None:
        return self.int_range or self.float_range

    def edge_values(self) -> list[Scalar]:
        """The values a spec must take for the search to be valid: each choice, or the
        bounds of a range."""
        return list(self.choice) if self.choice is not None else list(self.bounds or ())

    def describe(self) -> dict[str, Any]:
        """The entry as data, the same for the same search (a study's record of it)."""
        return self.model_dump(by_alias=True, exclude_defaults=True)


@dataclass(frozen=True)
class SearchSpace:
    """The entries in the order written, and where each name is written."""

    dimensions: dict[str, Dimension] = field(default_factory=dict)
    locations: dict[str, Location] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {name: dim.describe() for name, dim in self.dimensions.items()}


def compile_search(section: Any, where: SourceMap, overrides: Sequence[Override] = ()) -> Any:
    """The `search:` section as a SearchSpace; None where the spec has none. `--set` does
    not reach it (it sets what a trial trains, not what is searched)."""
    for override in overrides:
        raise SpecError(
            f"--set cannot change the search section ('{override.name}')",
            Location(override.location.file, override.location.line, 1),
            hint="edit the spec's 'search:' (or a file that extends it)",
        )
    if section is None:
        return None
    if not isinstance(section, dict) or not section:
        raise SpecError(
            "'search' maps parameter or training.* names to a choice or a range",
            where.value(("search",)),
            hint="for example: search: {width: {choice: [0.5, 1.0]}}",
        )
    space = SearchSpace()
    for name, entry in section.items():
        location = where.key(("search", name))
        if not isinstance(name, str) or not _NAME.match(name):
            raise SpecError(
                f"search: '{name}' is not a parameter name or a training.* setting",
                location,
                hint="a spec parameter (width) or a setting (training.optimizer.learning_rate)",
            )
        if not isinstance(entry, dict):
            raise SpecError(
                f"search: '{name}' takes {{choice: [...]}}, {{int: [low, high]}} or "
                "{float: [low, high]}",
                where.value(("search", name)),
            )
        try:
            dimension = Dimension.model_validate(entry)
        except ValidationError as exc:
            error = spec_error_from_validation(exc, where, Dimension, entry, base=("search", name))
            raise SpecError(
                f"search: '{name}': {error.message}", error.location, hint=error.hint
            ) from None
        space.dimensions[name] = dimension
        space.locations[name] = location
    return space


def set_text(name: str, value: Scalar) -> str:
    """`NAME=VALUE` as `--set` reads it back to the same value (a float keeps a dot before
    its exponent: YAML reads `1e-05` as a string)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name}: {value} is not a finite number")
        text = repr(value)
        mantissa, _, exponent = text.partition("e")
        if exponent and "." not in mantissa:
            text = f"{mantissa}.0e{exponent}"
    elif isinstance(value, int):
        text = str(value)
    else:
        text = '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name}={text}"
