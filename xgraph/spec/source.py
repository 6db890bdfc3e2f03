"""Safe YAML loading that keeps the source location of every key and value.

Only plain YAML data is accepted: no application tags, no duplicate keys, bounded size and
bounded alias expansion, so a hostile file fails fast with a located error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from xgraph.errors import Location, SpecError

MAX_SOURCE_BYTES = 1 << 20
MAX_VALUES = 200_000

PathKey = tuple[str | int, ...]

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


class _Converter:
    """Turns a composed YAML node tree into Python data, recording locations on the way."""

    def __init__(self, file: str, loader: yaml.SafeLoader) -> None:
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
                f"unsupported YAML tag '{node.tag}': specs hold plain data only",
                _location(self.file, node.start_mark),
            )
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node)

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


def parse_yaml(text: str, file: str) -> Source:
    """Parse one YAML document held in `text`; `file` names it in error messages."""
    if len(text.encode("utf-8", errors="replace")) > MAX_SOURCE_BYTES:
        raise SpecError(
            f"file is larger than {MAX_SOURCE_BYTES // 1024} KiB; a spec is a few KiB",
            Location(file, 1, 1),
        )
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = _location(file, mark) if mark else Location(file, 1, 1)
        problem = exc.problem or "malformed YAML"
        context = f" {exc.context}" if exc.context else ""
        raise SpecError(f"malformed YAML: {problem}{context}", location) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"malformed YAML: {exc}", Location(file, 1, 1)) from None
    finally:
        loader.dispose()
    if root is None:
        raise SpecError(
            "the file is empty: a spec needs at least 'xgraph', 'name' and 'nodes'",
            Location(file, 1, 1),
        )
    converter = _Converter(file, loader)
    data = converter.convert(root, ())
    return Source(data, converter.where)


def load_yaml(path: str | Path) -> Source:
    """Read and parse a spec file, refusing huge or unreadable files with a located error."""
    path = Path(path)
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_SOURCE_BYTES:
            raise SpecError(
                f"file is {size // 1024} KiB, larger than the {MAX_SOURCE_BYTES // 1024} KiB limit",
                Location(name, 1, 1),
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read file: {exc.strerror}", Location(name, 1, 1)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"file is not UTF-8 text (byte {exc.start})", Location(name, 1, 1)
        ) from None
    return parse_yaml(text, name)
