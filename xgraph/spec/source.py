"""Safe YAML loading that keeps the source location of every key and value.

Only plain YAML data is accepted: no application tags, no duplicate keys, bounded size and
bounded alias expansion, so a hostile file fails fast with a located error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from xgraph.budgets import Budgets, active_budgets
from xgraph.errors import Location, SpecError

PathKey = tuple[str | int, ...]

_YAML_TAG_PREFIX = "tag:yaml.org,2002:"

_CORE_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:map",
}


@dataclass
class SourceMap:
    """Where each value of a loaded document came from, keyed by its path of keys and indices."""

    file: str
    values: dict[PathKey, Location] = field(default_factory=dict)
    keys: dict[PathKey, Location] = field(default_factory=dict)

    def value(self, path: PathKey) -> Location:
        """The location of the value at `path`, or of its nearest enclosing value."""
        for end in range(len(path), -1, -1):
            found = self.values.get(path[:end])
            if found is not None:
                return found
        return Location(self.file, 1, 1)

    def key(self, path: PathKey) -> Location:
        """The location of the key naming `path`, falling back to the value's location."""
        return self.keys.get(path) or self.value(path)


@dataclass
class Source:
    """A loaded YAML document: plain Python data and where each part of it was written."""

    data: Any
    where: SourceMap


def _location(file: str, mark: yaml.Mark) -> Location:
    return Location(file, mark.line + 1, mark.column + 1)


def _short_tag(tag: str) -> str:
    """A tag as it was written: `!!python/object`, not `tag:yaml.org,2002:python/object`."""
    return "!!" + tag.removeprefix(_YAML_TAG_PREFIX) if tag.startswith(_YAML_TAG_PREFIX) else tag


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
    start = _location(file, exc.context_mark)
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


# What YAML refuses in a stream (PyYAML's own list): control characters such as NUL or BEL.
_UNPRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


def _check_printable(text: str, file: str) -> None:
    found = _UNPRINTABLE.search(text)
    if found is None:
        return
    before = text[: found.start()]
    line = before.count("\n") + 1
    column = found.start() - (before.rfind("\n") + 1) + 1
    code = ord(found.group(0))
    kind = "control character" if code < 0x20 or 0x7F <= code <= 0x9F else "character"
    raise SpecError(
        f"{kind} U+{code:04X} is not allowed in YAML text",
        Location(file, line, column),
        hint='remove it; inside a double-quoted string, write it as an escape such as "\\a"',
    )


def _too_deep(budgets: Budgets, location: Location) -> SpecError:
    return budgets.exceeded(
        "yaml_depth", f"the document nests deeper than {budgets.yaml_depth} levels", location
    )


class _Composer(yaml.composer.Composer):
    """PyYAML's composer made lean and counting: it refuses a document that nests too deep
    (before the conversion's recursion would overflow) or holds too many values (before a
    large file costs seconds), at the value that goes over; it notes whether aliases were
    used (without them nothing is shared, and the values counted are all there are), and
    resolves each distinct plain scalar's type once."""

    def __init__(self, file: str, budgets: Budgets) -> None:
        yaml.composer.Composer.__init__(self)
        self.file = file
        self.budgets = budgets
        self.depth = 0
        self.count = 0
        self.aliased = False
        self._plain_tags: dict[str, str] = {}

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        self.depth += 1
        self.count += 1
        try:
            if self.depth > self.budgets.yaml_depth:
                raise _too_deep(self.budgets, _location(self.file, self.peek_event().start_mark))
            if self.count > self.budgets.yaml_values:
                raise self.budgets.exceeded(
                    "yaml_values",
                    f"the document holds more than {self.budgets.yaml_values:,} values",
                    _location(self.file, self.peek_event().start_mark),
                )
            return self._compose(self.peek_event())
        finally:
            self.depth -= 1

    def _compose(self, event: yaml.Event) -> yaml.Node:
        kind = type(event)
        if kind is yaml.AliasEvent:
            self.get_event()
            self.aliased = True
            if event.anchor not in self.anchors:
                raise yaml.composer.ComposerError(
                    None, None, f"found undefined alias {event.anchor!r}", event.start_mark
                )
            return self.anchors[event.anchor]
        anchor = event.anchor
        if anchor is not None and anchor in self.anchors:
            raise yaml.composer.ComposerError(
                f"found duplicate anchor {anchor!r}; first occurrence",
                self.anchors[anchor].start_mark,
                "second occurrence",
                event.start_mark,
            )
        self.get_event()
        node: yaml.Node
        if kind is yaml.ScalarEvent:
            node = yaml.ScalarNode(
                self._scalar_tag(event), event.value, event.start_mark, event.end_mark, event.style
            )
            if anchor is not None:
                self.anchors[anchor] = node
            return node
        if kind is yaml.SequenceStartEvent:
            tag = event.tag if event.tag not in (None, "!") else _SEQ_TAG
            node = yaml.SequenceNode(tag, [], event.start_mark, None, event.flow_style)
            end = yaml.SequenceEndEvent
        else:
            tag = event.tag if event.tag not in (None, "!") else _MAP_TAG
            node = yaml.MappingNode(tag, [], event.start_mark, None, event.flow_style)
            end = yaml.MappingEndEvent
        if anchor is not None:
            self.anchors[anchor] = node
        items = node.value
        while type(self.peek_event()) is not end:
            if end is yaml.SequenceEndEvent:
                items.append(self.compose_node(node, None))
            else:
                items.append((self.compose_node(node, None), self.compose_node(node, None)))
        node.end_mark = self.get_event().end_mark
        return node

    def _scalar_tag(self, event: yaml.ScalarEvent) -> str:
        if event.tag not in (None, "!"):
            return event.tag
        if not event.implicit[0]:
            return self.resolve(yaml.ScalarNode, event.value, event.implicit)
        tag = self._plain_tags.get(event.value)
        if tag is None:
            tag = self._plain_tags[event.value] = self.resolve(
                yaml.ScalarNode, event.value, event.implicit
            )
        return tag


_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"


if yaml.__with_libyaml__:  # libyaml scans and parses ten times faster than pure Python
    from yaml._yaml import CParser as _Parser

    class _Loader(_Composer, _Parser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        """libyaml's events, composed and constructed by PyYAML's safe Python classes."""

        def __init__(self, text: str, file: str, budgets: Budgets) -> None:
            _Parser.__init__(self, text)
            _Composer.__init__(self, file, budgets)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

else:  # pragma: no cover - PyYAML's wheels include libyaml

    class _Loader(  # type: ignore[no-redef]
        yaml.reader.Reader,
        yaml.scanner.Scanner,
        yaml.parser.Parser,
        _Composer,
        yaml.constructor.SafeConstructor,
        yaml.resolver.Resolver,
    ):
        """PyYAML's pure Python reader, scanner and parser: the same results, slower."""

        def __init__(self, text: str, file: str, budgets: Budgets) -> None:
            yaml.reader.Reader.__init__(self, text)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            _Composer.__init__(self, file, budgets)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)


_INT_TAG = "tag:yaml.org,2002:int"
_STR_TAG = "tag:yaml.org,2002:str"


class _Converter:
    """Turns a composed YAML node tree into Python data, recording locations on the way."""

    def __init__(self, file: str, loader: _Loader, budgets: Budgets) -> None:
        self.file = file
        self.loader = loader
        self.budgets = budgets
        self.largest = 10**budgets.integer_digits
        self.where = SourceMap(file)

    def convert(self, node: yaml.Node, path: PathKey) -> Any:
        self.where.values[path] = _location(self.file, node.start_mark)
        if node.tag not in _CORE_TAGS:
            if node.tag == "tag:yaml.org,2002:timestamp":
                return node.value  # a date-like word stays the string it was written as
            raise SpecError(
                f"unsupported YAML tag '{_short_tag(node.tag)}': specs hold plain data only",
                _location(self.file, node.start_mark),
            )
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        if node.tag == _STR_TAG:  # the common cases, without the constructor's machinery
            return node.value
        text = node.value
        if node.tag == _INT_TAG and text.isdigit() and (text[0] != "0" or text == "0"):
            value = int(text) if len(text) <= self.budgets.integer_digits else None
        else:
            try:
                value = self.loader.construct_object(node)
            except ValueError:  # an integer of more than 4300 digits, which Python refuses
                value = None
        if node.tag == _INT_TAG and (value is None or not -self.largest < value < self.largest):
            raise self.budgets.exceeded(
                "integer_digits",
                f"integer of more than {self.budgets.integer_digits} digits",
                _location(self.file, node.start_mark),
            )
        return value

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_location = _location(self.file, key_node.start_mark)
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecError("YAML merge keys ('<<') are not supported", key_location)
            if not isinstance(key_node, yaml.ScalarNode):
                raise SpecError("mapping keys must be plain names", key_location)
            key = str(self.convert(key_node, (*path, "<key>")))
            if key in result:
                first = self.where.keys[(*path, key)]
                raise SpecError(
                    f"duplicate key '{key}'",
                    key_location,
                    notes=[f"first given at {first}"],
                )
            self.where.keys[(*path, key)] = key_location
            result[key] = self.convert(value_node, (*path, key))
        self.where.values.pop((*path, "<key>"), None)
        return result


def _check_expansion(root: yaml.Node, file: str, budgets: Budgets) -> None:
    """Refuse alias bombs and self-referring aliases before expanding anything.

    Aliases share nodes, so a few lines can stand for billions of values; sizes are counted
    once per shared node, which takes as long as reading the text did.
    """
    sizes: dict[int, int] = {}
    busy = -1
    limit = budgets.yaml_values

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known == busy:
            raise SpecError(
                "an alias is used inside its own anchor", _location(file, node.start_mark)
            )
        if known is not None:
            return known
        sizes[id(node)] = busy
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(key) + size(value) for key, value in node.value)
        if total > limit:
            raise budgets.exceeded(
                "yaml_values",
                f"the document expands to more than {limit:,} values (alias bomb?)",
                _location(file, node.start_mark),
            )
        sizes[id(node)] = total
        return total

    size(root)


def _is_empty(root: yaml.Node | None) -> bool:
    """No document at all, or one holding nothing (`---` alone, or only comments after it)."""
    return root is None or (root.tag == "tag:yaml.org,2002:null" and root.value == "")


def _too_large(file: str, budgets: Budgets, size: int | None = None) -> SpecError:
    shown = f"{size:,} bytes, " if size is not None else ""
    return budgets.exceeded(
        "source_bytes",
        f"file is {shown}larger than {budgets.source_bytes:,} bytes",
        Location(file, 1, 1),
    )


def parse_yaml(text: str, file: str, budgets: Budgets | None = None) -> Source:
    """Parse one YAML document held in `text`; `file` names it in error messages."""
    budgets = active_budgets(budgets)
    limit = budgets.source_bytes
    if len(text) > limit or len(text.encode("utf-8", errors="replace")) > limit:
        raise _too_large(file, budgets)
    _check_printable(text, file)
    loader = _Loader(text, file, budgets)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = _location(file, mark) if mark else Location(file, 1, 1)
        if "maximum nesting depth" in (exc.problem or ""):  # libyaml's own bound, 1000 levels
            raise _too_deep(budgets, location) from None
        problem = _problem(exc, text)
        raise SpecError(
            f"malformed YAML: {_yaml_message(problem, exc.context)}",
            location,
            hint=_yaml_hint(problem),
            notes=_yaml_notes(exc, file, location),
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"malformed YAML: {exc}", Location(file, 1, 1)) from None
    finally:
        loader.dispose()
    if _is_empty(root):
        raise SpecError(
            "the file is empty: a spec needs at least 'xgraph', 'name', 'inputs' and 'nodes'",
            Location(file, 1, 1),
        )
    if loader.aliased:  # shared nodes: count what they expand to
        _check_expansion(root, file, budgets)
    converter = _Converter(file, loader, budgets)
    data = converter.convert(root, ())
    return Source(data, converter.where)


def read_yaml_file(
    path: str | Path, name: str | None = None, budgets: Budgets | None = None
) -> Source:
    """Read and parse one YAML file, refusing huge or unreadable files with a located error;
    `name` is how messages name it (default: the path as given)."""
    budgets = active_budgets(budgets)
    path = Path(path)
    name = str(path) if name is None else name
    limit = budgets.source_bytes
    try:
        size = path.stat().st_size
        with path.open("rb") as stream:
            # At most one byte past the limit, whatever size the file claims (/dev/zero, a pipe).
            raw = stream.read(limit + 1)
    except OSError as exc:
        raise SpecError(f"cannot read file: {exc.strerror}", Location(name, 1, 1)) from None
    if len(raw) > limit:
        raise _too_large(name, budgets, size if size > limit else None)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start].decode("utf-8")  # valid up to the first bad byte
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        raise SpecError(
            f"file is not UTF-8 text (byte 0x{raw[exc.start]:02x})",
            Location(name, line, column),
        ) from None
    return parse_yaml(text, name, budgets)
