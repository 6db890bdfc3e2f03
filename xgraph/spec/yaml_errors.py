"""PyYAML's parse errors in a reader's words: what was found, where the unfinished structure
began, and what usually causes the parser's state-named complaints."""

from __future__ import annotations

import re

import yaml

from xgraph.errors import Location, SpecError
from xgraph.spec.yaml_loader import mark_location


def malformed_yaml(exc: yaml.MarkedYAMLError, text: str, location: Location) -> SpecError:
    """The located error for a document PyYAML could not parse."""
    problem = _problem(exc, text)
    return SpecError(
        f"malformed YAML: {_yaml_message(problem, exc.context)}",
        location,
        hint=_yaml_hint(problem),
        notes=_yaml_notes(exc, location.file, location),
    )


def _yaml_message(problem: str, context: str | None) -> str:
    """PyYAML's problem and context as one sentence: "found X while scanning Y", but
    "expected a single document in the stream but found another document"."""
    if not context:
        return problem
    if context.startswith("while"):
        return f"{problem} {context}"
    return f"{context} {problem}"


def _yaml_notes(exc: yaml.MarkedYAMLError, file: str, location: Location) -> list[str]:
    """Where the unfinished structure began: an unclosed bracket is found only at the end."""
    match = re.fullmatch(r"while \w+ an? (.+)", exc.context or "")
    if not match or exc.context_mark is None:
        return []
    start = mark_location(file, exc.context_mark)
    return [f"the {match.group(1)} began at {start}"] if start != location else []


def _yaml_hint(problem: str) -> str | None:
    """The parser's wording names parser states; say what usually causes them."""
    if "'\\t'" in problem:
        return "YAML indents with spaces, not tabs"
    indentation = ("<block end>", "mapping values are not allowed", "'-' indicator", "expected key")
    if any(words in problem for words in indentation):
        return "check the indentation of this line and the one before it"
    return None


def _found_at(text: str, mark: yaml.Mark) -> str:
    """What the text holds at `mark`, for "expected X, but found Y"."""
    lines = text.splitlines()
    rest = lines[mark.line][mark.column :] if mark.line < len(lines) else ""
    if not rest.strip() and not any(line.strip() for line in lines[mark.line + 1 :]):
        return "the end of the file"
    word = re.match(r"[^\s,:\[\]{}#]+", rest)
    return repr(word.group(0)[:40] if word else rest[:1] or "\n")


def _problem(exc: yaml.MarkedYAMLError, text: str) -> str:
    """libyaml's problem made as specific as PyYAML's: what was found, which character."""
    problem = exc.problem or "malformed YAML"
    mark = exc.problem_mark
    if mark is None:
        return problem
    if problem.startswith("did not find expected "):
        expected = problem.removeprefix("did not find expected ")
        return f"expected {expected}, but found {_found_at(text, mark)}"
    if problem == "found character that cannot start any token":
        lines = text.splitlines()
        line = lines[mark.line] if mark.line < len(lines) else ""
        character = line[mark.column : mark.column + 1] or "\n"
        return f"found character {character!r} that cannot start any token"
    return problem
