"""What every weight file must pass, whatever its format: a weight file is untrusted input.

Readers check what a file declares (structure, names, shapes, dtypes, sizes) against the
graph before they read any tensor data, so a file cannot make xgraph allocate more than the
graph needs; the values are checked once they are canonical. Every refusal is a
`WeightFileError`, printed `FILE: error: ...`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xgraph.errors import FileError
from xgraph.weights.initial import Weights

ACCEPT_OPTION = "--accept-bad-values"

# Read as they are (float64 is rounded to float32, and a value beyond float32's range
# becomes infinite, which the value check then reports).
FLOAT_DTYPES = frozenset({"float32", "float64"})
# Read only on request: converting them to float32 loses precision or means nothing.
CONVERTIBLE_DTYPES = frozenset(
    {"float16", "bfloat16", "bool"}
    | {f"int{bits}" for bits in (8, 16, 32, 64)}
    | {f"uint{bits}" for bits in (8, 16, 32, 64)}
)

# Parameters whose values cannot be negative, by canonical parameter name.
NON_NEGATIVE_PARAMS = frozenset({"moving_variance"})

MAX_NOTES = 8
_LONGEST_NAME_SHOWN = 120


class WeightFileError(FileError):
    """A weight file (or the weights given to a writer) refused, printed
    `FILE: error: message` in every format, so a user sees which file to look at."""


@dataclass(frozen=True)
class ReadOptions:
    """How strict reading is. `accept_bad_values` loads NaN and infinite values, negative
    variances and non-float tensors (converted to float32) instead of refusing them."""

    accept_bad_values: bool = False


def shown(name: object) -> str:
    """A name read from a file, safe to print: control characters escaped (no terminal
    sequences from a hostile file), and cut short if it is long."""
    text = str(name)
    if not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii")
    if len(text) > _LONGEST_NAME_SHOWN:
        text = f"{text[:_LONGEST_NAME_SHOWN]}... ({len(text):,} characters)"
    return text


def limited_notes(lines: list[str]) -> list[str]:
    """At most MAX_NOTES lines, then a count of the rest, so a report stays short."""
    if len(lines) <= MAX_NOTES:
        return lines
    return [*lines[:MAX_NOTES], f"... and {len(lines) - MAX_NOTES} more"]


INTEGER_DTYPES = frozenset(f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64))


def check_dtypes(
    declared: Mapping[str, str],
    source: str | Path,
    options: ReadOptions,
    integers: Collection[str] = (),
) -> None:
    """Every tensor float32 or float64, by the file's own tensor names, but those named in
    `integers` (counts, which may be integers too); other numeric types only with
    `accept_bad_values`, and types with no float32 reading never."""
    declared = {
        name: "float32" if name in integers and dtype in INTEGER_DTYPES else dtype
        for name, dtype in declared.items()
    }
    unreadable = [
        f"{shown(name)}: {shown(dtype)}"
        for name, dtype in declared.items()
        if dtype not in FLOAT_DTYPES | CONVERTIBLE_DTYPES
    ]
    if unreadable:
        raise WeightFileError(
            source,
            f"{len(unreadable)} tensor(s) of a type that cannot be read as float32",
            notes=limited_notes(unreadable),
        )
    converted = [
        f"{shown(name)}: {dtype}" for name, dtype in declared.items() if dtype not in FLOAT_DTYPES
    ]
    if converted and not options.accept_bad_values:
        raise WeightFileError(
            source,
            f"{len(converted)} tensor(s) are not float32 or float64",
            hint=f"{ACCEPT_OPTION} converts them to float32",
            notes=limited_notes(converted),
        )


def as_float32(array: Any, copy: bool | None = None) -> np.ndarray:
    """A tensor of an admitted type (see `check_dtypes`) as float32; `copy=True` for one
    that must not stay a view of a mapped file. A float64 beyond float32's range becomes
    infinite quietly: `check_values` reports it by name."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.array(array, dtype=np.float32, copy=copy)


def check_values(weights: Weights, source: str | Path, options: ReadOptions) -> None:
    """No NaN or infinity anywhere and no negative variance, each reported by canonical
    tensor name: such a file would otherwise load, and parity would blame a backend."""
    if options.accept_bad_values:
        return
    problems = []
    for key, value in weights.items():
        found = []
        if not np.isfinite(value).all():
            nans = int(np.count_nonzero(np.isnan(value)))
            infinities = value.size - nans - int(np.count_nonzero(np.isfinite(value)))
            found += [f"{nans:,} NaN"] if nans else []
            found += [f"{infinities:,} infinite"] if infinities else []
        if key.rsplit("/", 1)[-1] in NON_NEGATIVE_PARAMS:
            negative = int(np.count_nonzero(value < 0))
            if negative:
                found.append(f"{negative:,} negative (a variance cannot be negative)")
        if found:
            problems.append(f"{key}: {', '.join(found)} of {value.size:,} values")
    if problems:
        raise WeightFileError(
            source,
            f"{len(problems)} tensor(s) hold values a model cannot use",
            hint=f"{ACCEPT_OPTION} loads them anyway",
            notes=limited_notes(problems),
        )
