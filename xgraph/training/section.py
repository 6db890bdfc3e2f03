"""The `training:` section compiled: `${...}` already resolved by the expansion, then the
`--set training.KEY=VALUE` overrides applied, then the recipe validated, every error located
at the value that caused it (in the spec, or at the `--set`)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from xgraph.errors import Location, SpecError, did_you_mean
from xgraph.spec.diagnostics import spec_error_from_validation
from xgraph.spec.params import Override
from xgraph.spec.source import PathKey, SourceMap
from xgraph.training.recipe import DEFAULT_RECIPE, OPTIMIZERS, SCHEDULES, TrainingRecipe, named

# Sections given as a mapping with a `name`; a bare name is short for `{name: NAME}`.
_NAMED = {"optimizer": named(OPTIMIZERS), "schedule": named(SCHEDULES)}


def _override_path(override: Override) -> tuple[str, ...]:
    parts = override.name.removeprefix("training").removeprefix(".").split(".")
    if not all(parts):
        raise SpecError(
            f"--set '{override.name}' is not a key of the training section",
            Location(override.location.file, override.location.line, 1),
            hint="for example: --set training.optimizer.learning_rate=0.01",
        )
    return tuple(parts)


def _with_names(section: Any) -> Any:
    """`optimizer: adam` read as `optimizer: {name: adam}` (and the same for `schedule`)."""
    if not isinstance(section, dict):
        return section
    return {
        key: {"name": value} if key in _NAMED and isinstance(value, str) else value
        for key, value in section.items()
    }


def _apply(
    section: dict[str, Any],
    path: tuple[str, ...],
    value: Any,
    where: SourceMap,
    location: Location,
) -> None:
    """Set `value` at `path` of the section; the value, and everything under it, is now located
    at the `--set`. Setting a named section's `name` to another name starts that section
    afresh: the old optimizer's settings do not apply to the new one."""
    target = section
    for depth, key in enumerate(path[:-1]):
        child = target.get(key)
        if not isinstance(child, dict):
            if child is None and depth == 0 and key in _NAMED:  # the default, then the change
                child = getattr(DEFAULT_RECIPE, key).model_dump()
            child = target[key] = {} if child is None else child
            where.values[("training", *path[: depth + 1])] = location
        target = child
    last = path[-1]
    if len(path) == 2 and path[0] in _NAMED and last == "name" and target.get("name") != value:
        target.clear()
    if len(path) == 1 and last in _NAMED and isinstance(value, str):
        value = {"name": value}
    target[last] = copy.deepcopy(value)
    full = ("training", *path)
    for known in [key for key in where.values if key[: len(full)] == full]:
        del where.values[known]
    where.keys.pop(full, None)
    where.values[full] = location


def _check_named(data: dict[str, Any], where: SourceMap) -> None:
    """The optimizer's and the schedule's names, and the keys each takes, checked here: a
    pydantic union would not say which keys the named one has."""
    for section, names in _NAMED.items():
        given = data.get(section)
        path: PathKey = ("training", section)
        if isinstance(given, dict) and "name" not in given:
            raise SpecError(
                f"training: the {section} needs a 'name' ({', '.join(names)})",
                where.value(path),
                hint=f"for example: {section}: {{name: {next(iter(names))}, ...}}",
            )
        if not isinstance(given, dict) or not isinstance(given.get("name"), str):
            continue
        name = given["name"]
        if name not in names:
            raise SpecError(
                f"training: unknown {section} '{name}' ({section}s: {', '.join(names)})",
                where.value((*path, "name")),
                hint=did_you_mean(name, names),
            )
        fields = names[name].model_fields
        for key in given:
            if key not in fields:
                raise SpecError(
                    f"training: {section} '{name}' has no setting '{key}' "
                    f"(settings: {', '.join(f for f in fields if f != 'name')})",
                    where.key((*path, key)),
                    hint=did_you_mean(str(key), fields),
                )


def compile_training(
    section: Any, where: SourceMap, overrides: Sequence[Override] = ()
) -> TrainingRecipe:
    """The recipe of a spec: its `training:` section (resolved), with `--set` overrides, or
    the defaults (xgraph.training.recipe) for the keys it leaves out."""
    if section is not None and not isinstance(section, dict):
        raise SpecError("'training' is a mapping of settings", where.value(("training",)))
    data = _with_names(copy.deepcopy(section) if section else {})
    if overrides:
        where = SourceMap(where.file, dict(where.values), dict(where.keys))
        first: dict[str, Location] = {}
        for override in overrides:
            line_start = Location(override.location.file, override.location.line, 1)
            if override.name in first:
                raise SpecError(
                    f"--set sets '{override.name}' twice",
                    line_start,
                    hint="keep one of them",
                    notes=[f"first set at {first[override.name]}"],
                )
            first[override.name] = line_start
            path = _override_path(override)
            if path[0] not in TrainingRecipe.model_fields:
                raise SpecError(
                    f"unknown training setting '{path[0]}' in --set '{override.name}'",
                    line_start,
                    hint=did_you_mean(path[0], TrainingRecipe.model_fields),
                )
            _apply(data, path, override.value, where, override.location)
    _check_named(data, where)
    try:
        return TrainingRecipe.model_validate(data)
    except ValidationError as exc:
        error = spec_error_from_validation(exc, where, TrainingRecipe, data, base=("training",))
        raise SpecError(
            f"training: {error.message}", error.location, hint=error.hint, notes=error.notes
        ) from None
