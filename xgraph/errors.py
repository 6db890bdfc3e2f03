"""User-facing errors: every one carries the place in the spec text it is about."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Location:
    """A point in a source text: 1-based line and column, as editors count them."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class FileLocation(Location):
    """A whole file rather than a place in it: errors about it read `PATH: error: ...`."""

    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return self.file


class SpecError(Exception):
    """A mistake in the user's input (spec, --set value, weights file): exit status 2."""

    def __init__(
        self,
        message: str,
        location: Location | None = None,
        hint: str | None = None,
        notes: Iterable[str] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint
        self.notes = tuple(notes)

    def format(self) -> str:
        where = f"{self.location}: " if self.location else ""
        lines = [f"{where}error: {self.message}"]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def as_yaml(value: object) -> str:
    """A value as a spec would write it, for messages: null, true, 'text', [1, 2]."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(as_yaml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {as_yaml(item)}" for key, item in value.items()) + "}"
    return repr(value)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest valid spelling, or None when nothing is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None


def printable_path(path: str | Path) -> str:
    """A file name as it is when printable; escaped when it holds control characters, so that
    an error message cannot rewrite the terminal."""
    text = str(path)
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


class FileError(SpecError):
    """A SpecError about a whole file or folder (a weight file, an image folder, an output),
    printed `PATH: error: message`: exit status 2, as for a spec."""

    def __init__(
        self,
        path: str | Path,
        message: str,
        hint: str | None = None,
        notes: Iterable[str] = (),
    ) -> None:
        super().__init__(message, FileLocation(printable_path(path)), hint=hint, notes=notes)
