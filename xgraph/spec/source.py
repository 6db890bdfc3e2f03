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

from xgraph.errors import Location, SpecError

MAX_SOURCE_BYTES = 256 << 10  # a spec is a few KiB; this bounds the worst-case parse near a second
MAX_VALUES = 200_000
MAX_DEPTH = 64  # a spec nests about 8 levels; deeper input would exhaust Python's stack

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
    """PyYAML's wording names parser states; say what usually causes them."""
    if "'\\t'" in problem:
        return "YAML indents with spaces, not tabs"
    if "<block end>" in problem or "mapping values are not allowed" in problem:
        return "check the indentation of this line and the one before it"
    return None


class _Loader(yaml.SafeLoader):
    """PyYAML's safe composer, refusing deep nesting before its recursion overflows."""

    def __init__(self, text: str, file: str) -> None:
        super().__init__(text)
        self.file = file
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise SpecError(
                    f"the document nests deeper than {MAX_DEPTH} levels",
                    _location(self.file, self.peek_event().start_mark),
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Converter:
    """Turns a composed YAML node tree into Python data, recording locations on the way."""

    def __init__(self, file: str, loader: _Loader) -> None:
        self.file = file
        self.loader = loader
        self.where = SourceMap(file)
        self.count = 0

    def convert(self, node: yaml.Node, path: PathKey) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise SpecError(
                f"document expands to more than {MAX_VALUES} values (alias bomb?)",
                _location(self.file, node.start_mark),
            )
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
        try:
            return self.loader.construct_object(node)
        except ValueError as exc:  # such as an integer of more than 4300 digits
            reason = str(exc).split(";")[0]
            raise SpecError(
                f"cannot read value: {reason[:1].lower()}{reason[1:]}",
                _location(self.file, node.start_mark),
            ) from None

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


def _check_expansion(root: yaml.Node, file: str) -> None:
    """Refuse alias bombs and self-referring aliases before expanding anything.

    Aliases share nodes, so a few lines can stand for billions of values; sizes are counted
    once per shared node, which takes as long as reading the text did.
    """
    sizes: dict[int, int] = {}
    busy = -1

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
        if total > MAX_VALUES:
            raise SpecError(
                f"the document expands to more than {MAX_VALUES} values (alias bomb?)",
                _location(file, node.start_mark),
            )
        sizes[id(node)] = total
        return total

    size(root)


def _is_empty(root: yaml.Node | None) -> bool:
    """No document at all, or one holding nothing (`---` alone, or only comments after it)."""
    return root is None or (root.tag == "tag:yaml.org,2002:null" and root.value == "")


def parse_yaml(text: str, file: str) -> Source:
    """Parse one YAML document held in `text`; `file` names it in error messages."""
    if len(text.encode("utf-8", errors="replace")) > MAX_SOURCE_BYTES:
        raise SpecError(
            f"file is larger than {MAX_SOURCE_BYTES // 1024} KiB; a spec is a few KiB",
            Location(file, 1, 1),
        )
    loader = _Loader(text, file)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = _location(file, mark) if mark else Location(file, 1, 1)
        problem = exc.problem or "malformed YAML"
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
    _check_expansion(root, file)
    converter = _Converter(file, loader)
    data = converter.convert(root, ())
    return Source(data, converter.where)


def load_yaml(path: str | Path) -> Source:
    """Read and parse a spec file, with the specs it `extends` merged in (xgraph.spec.extends)."""
    source = read_yaml_file(path)
    if isinstance(source.data, dict) and "extends" in source.data:
        from xgraph.spec.extends import resolve_extends

        return resolve_extends(source)
    return source


def read_yaml_file(path: str | Path, name: str | None = None) -> Source:
    """Read and parse one YAML file, refusing huge or unreadable files with a located error;
    `name` is how messages name it (default: the path as given)."""
    path = Path(path)
    name = str(path) if name is None else name
    try:
        size = path.stat().st_size
        with path.open("rb") as stream:
            # At most one byte past the limit, whatever size the file claims (/dev/zero, a pipe).
            raw = stream.read(MAX_SOURCE_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"cannot read file: {exc.strerror}", Location(name, 1, 1)) from None
    if len(raw) > MAX_SOURCE_BYTES:
        shown = f"{size:,} bytes, " if size > MAX_SOURCE_BYTES else ""
        raise SpecError(
            f"file is {shown}larger than the {MAX_SOURCE_BYTES:,}-byte limit",
            Location(name, 1, 1),
        )
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
    return parse_yaml(text, name)
