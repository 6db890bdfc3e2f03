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
from xgraph.spec.yaml_errors import malformed_yaml
from xgraph.spec.yaml_loader import Loader as _Loader  # tests replace `_Loader` here
from xgraph.spec.yaml_loader import check_expansion, mark_location, too_deep

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


def _short_tag(tag: str) -> str:
    """A tag as it was written: `!!python/object`, not `tag:yaml.org,2002:python/object`."""
    return "!!" + tag.removeprefix(_YAML_TAG_PREFIX) if tag.startswith(_YAML_TAG_PREFIX) else tag


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
        self.where.values[path] = mark_location(self.file, node.start_mark)
        if node.tag not in _CORE_TAGS:
            if node.tag == "tag:yaml.org,2002:timestamp":
                return node.value  # a date-like word stays the string it was written as
            raise SpecError(
                f"unsupported YAML tag '{_short_tag(node.tag)}': specs hold plain data only",
                mark_location(self.file, node.start_mark),
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
                mark_location(self.file, node.start_mark),
            )
        return value

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_location = mark_location(self.file, key_node.start_mark)
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
        location = mark_location(file, mark) if mark else Location(file, 1, 1)
        if "maximum nesting depth" in (exc.problem or ""):  # libyaml's own bound, 1000 levels
            raise too_deep(budgets, location) from None
        raise malformed_yaml(exc, text, location) from None
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
        check_expansion(root, file, budgets)
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
