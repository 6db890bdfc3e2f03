"""The merge rules of `extends`: an extending file's changes applied to its resolved base.

Every value keeps the location of the file that wrote it: an inherited node points into the
base, an override into the extending file, so later errors need to know nothing about
`extends`. What an extending file may say (docs/spec.md, "Variants: extends"):

- `name`, `description`, `initializer`, `inputs`, `outputs`, `nodes`: replace the base's;
- `params`: per parameter, new declarations, or keys merged into an inherited one;
- `training`: merged setting by setting (xgraph.training.section);
- `search`: merged entry by entry (an entry given replaces the inherited one);
- `defaults`: merged op by op, attribute by attribute;
- `blocks`: per block, a whole new block (it gives `nodes`), or edits of an inherited one;
- `override`, `remove`, `replace`, `insert`: edits of the inherited `nodes`, by name
  (also allowed inside an edited block, on the block's nodes).
"""

from __future__ import annotations

import copy
from typing import Any

from xgraph.errors import Location, SpecError, did_you_mean
from xgraph.spec.block_names import block_origin
from xgraph.spec.locations import LocationTree
from xgraph.spec.source import PathKey, Source

EDIT_KEYS = ("override", "remove", "replace", "insert")
_REPLACED_KEYS = ("xgraph", "name", "description", "initializer", "inputs", "outputs", "nodes")


def merge_extension(base: Source, extension: Source) -> Source:
    """`base` (a resolved, valid spec) with the validated extending file's changes applied."""
    return _Merge(base, extension).run()


def _get(data: Any, path: PathKey) -> Any:
    for part in path:
        data = data[part]
    return data


class _Merge:
    """The base's data and locations, with the extending file's changes applied."""

    def __init__(self, base: Source, extension: Source) -> None:
        self.data: dict[str, Any] = copy.deepcopy(base.data)
        self.locations = LocationTree.of(base.where)
        self.ext = extension
        self.ext_locations = LocationTree.of(extension.where)
        self.file = extension.where.file

    def set(self, path: PathKey, ext_path: PathKey) -> None:
        """The extending file's value at `ext_path` becomes the value at `path`."""
        parent = _get(self.data, path[:-1])
        parent[path[-1]] = copy.deepcopy(_get(self.ext.data, ext_path))
        self.locations.place(path, self.ext_locations.find(ext_path))

    def merge_mapping(self, path: PathKey, ext_path: PathKey) -> None:
        """Each key of the extending file's mapping at `ext_path` set in the mapping at `path`."""
        for key in _get(self.ext.data, ext_path):
            self.set((*path, key), (*ext_path, key))

    # --- the merge -----------------------------------------------------------------------

    def run(self) -> Source:
        given = self.ext.data
        for key in _REPLACED_KEYS:
            if key in given:
                self.set((key,), (key,))
        self.params(("params",), ("params",))
        self.training()
        self.search()
        self.defaults()
        for name in given.get("blocks") or {}:
            self.block(name)
        self.edit(("nodes",), (), "the inherited 'nodes'")
        return Source(self.data, self.locations.source_map(self.file))

    def params(self, path: PathKey, ext_path: PathKey) -> None:
        declared = _get(self.ext.data, ext_path) if _has(self.ext.data, ext_path) else {}
        if not declared:
            return
        if path[-1] not in _get(self.data, path[:-1]):
            _get(self.data, path[:-1])[path[-1]] = {}
            self.locations.node(path).value = self.ext.where.value(ext_path)
        inherited = _get(self.data, path)
        for name in declared:
            if name in inherited and isinstance(inherited[name], dict):
                self.merge_mapping((*path, name), (*ext_path, name))
            else:
                self.set((*path, name), (*ext_path, name))

    def defaults(self) -> None:
        """`defaults` merge op by op, attribute by attribute: a variant changes one value
        and keeps the others its base sets."""
        given = self.ext.data.get("defaults")
        if not isinstance(given, dict) or not given:
            return
        if not isinstance(self.data.get("defaults"), dict):
            self.data["defaults"] = {}
            self.locations.node(("defaults",)).value = self.ext.where.value(("defaults",))
        inherited = self.data["defaults"]
        for op, values in given.items():
            if isinstance(values, dict) and isinstance(inherited.get(op), dict):
                self.merge_mapping(("defaults", op), ("defaults", op))
            else:
                self.set(("defaults", op), ("defaults", op))

    def training(self) -> None:
        """`training` merges setting by setting; the optimizer's or schedule's own settings
        merge too while it keeps its name, and are replaced with it when it names another."""
        given = self.ext.data.get("training")
        inherited = self.data.get("training")
        if not isinstance(given, dict) or not isinstance(inherited, dict):
            if given is not None:
                self.set(("training",), ("training",))
            return
        for key, value in given.items():
            base = inherited.get(key)
            if (
                isinstance(value, dict)
                and isinstance(base, dict)
                and value.get("name", base.get("name")) == base.get("name")
            ):
                self.merge_mapping(("training", key), ("training", key))
            else:
                self.set(("training", key), ("training", key))

    def search(self) -> None:
        given = self.ext.data.get("search")
        if isinstance(given, dict) and isinstance(self.data.get("search"), dict):
            self.merge_mapping(("search",), ("search",))
        elif given is not None:
            self.set(("search",), ("search",))

    def block(self, name: str) -> None:
        ext_path: PathKey = ("blocks", name)
        given = self.ext.data["blocks"][name]
        blocks = self.data.setdefault("blocks", {})
        if "nodes" in given:  # a whole block, new or in place of the inherited one
            self.set(ext_path, ext_path)
            return
        if name not in blocks:
            raise SpecError(
                f"block '{name}' is not in the spec this one extends: a new block needs 'nodes'",
                self.ext.where.key(ext_path),
                hint=did_you_mean(name, blocks),
            )
        self.params((*ext_path, "params"), (*ext_path, "params"))
        if "doc" in given:
            self.set((*ext_path, "doc"), (*ext_path, "doc"))
        self.edit((*ext_path, "nodes"), ext_path, f"the nodes of block '{name}'")

    # --- edits of a list of items --------------------------------------------------------

    def edit(self, list_path: PathKey, ext_base: PathKey, what: str) -> None:
        edits = _get(self.ext.data, ext_base)
        if not any(key in edits for key in EDIT_KEYS):
            return
        items: list[Any] = _get(self.data, list_path)
        where = self.ext.where
        index = _Index(
            items, what, list_path, self.locations, self.file, self.data.get("blocks") or {}
        )

        for name, patch in edits.get("override", {}).items():
            at = (*ext_base, "override", name)
            i = index.find(name, where.key(at), "override")
            index.overridden[i] = name
            for key in patch:
                if key == "args" and "use" in items[i] and isinstance(patch[key], dict):
                    items[i].setdefault("args", {})
                    self.merge_mapping((*list_path, i, "args"), (*at, "args"))
                else:
                    self.set((*list_path, i, key), (*at, key))

        gone: dict[int, str] = {}  # index -> what happened to it
        replacement: dict[int, PathKey] = {}
        ahead: dict[int, list[PathKey]] = {}
        behind: dict[int, list[PathKey]] = {}
        for position, name in enumerate(edits.get("remove", [])):
            at = (*ext_base, "remove", position)
            i = index.find(name, where.value(at), "remove")
            index.claim(i, name, "removed", gone, where.value(at))
        for name in edits.get("replace", {}):
            at = (*ext_base, "replace", name)
            i = index.find(name, where.key(at), "replace")
            index.claim(i, name, "replaced", gone, where.key(at))
            replacement[i] = at
        for position, insertion in enumerate(edits.get("insert", [])):
            at = (*ext_base, "insert", position)
            side = "after" if insertion.get("after") is not None else "before"
            i = index.find(insertion[side], where.value((*at, side)), f"insert {side}")
            table = behind if side == "after" else ahead
            table.setdefault(i, []).extend(
                (*at, "nodes", k) for k in range(len(insertion["nodes"]))
            )

        # The inherited items' locations, as they were before the list is rebuilt.
        before = self.locations.node(list_path).children
        ext = self.ext_locations
        rebuilt: list[tuple[Any, LocationTree | None]] = []
        for i, item in enumerate(items):
            new = ahead.get(i, [])
            if i in replacement:
                count = len(_get(self.ext.data, replacement[i]))
                new = [*new, *((*replacement[i], k) for k in range(count))]
            rebuilt.extend((_get(self.ext.data, p), ext.find(p)) for p in new)
            if i not in gone:
                rebuilt.append((item, before.get(i)))
            rebuilt.extend((_get(self.ext.data, p), ext.find(p)) for p in behind.get(i, []))
        self._check_removals(
            index, gone, [entry[0] for entry in rebuilt], list_path, edits, ext_base
        )

        items[:] = [copy.deepcopy(entry[0]) for entry in rebuilt]
        self.locations.node(list_path).children = {}
        for k, (_, origin) in enumerate(rebuilt):
            self.locations.place((*list_path, k), origin)

    def _check_removals(
        self,
        index: _Index,
        gone: dict[int, str],
        kept: list[Any],
        list_path: PathKey,
        edits: dict[str, Any],
        ext_base: PathKey,
    ) -> None:
        """A removed item that a kept item still names in its `inputs` (or an output) is an
        error at the `remove`: the reference would fail later, far from its cause."""
        outputs = (self.data.get("outputs") or []) if list_path == ("nodes",) else []
        first_user: dict[str, Any] = {}  # each name a kept item takes, and the first to take it
        for item in kept:
            for ref in _references(item):
                first_user.setdefault(ref, item)
        for position, name in enumerate(edits.get("remove", [])):
            at = self.ext.where.value((*ext_base, "remove", position))
            if name in first_user:
                user = _label(first_user[name])
                raise SpecError(
                    f"'{name}' cannot be removed: {user} still takes it as input",
                    at,
                    hint=f"remove {user} too, or override its 'inputs'",
                )
            if name in outputs:
                raise SpecError(
                    f"'{name}' cannot be removed: it is listed under 'outputs'",
                    at,
                    hint="give the spec other 'outputs'",
                )


def _has(data: Any, path: PathKey) -> bool:
    try:
        _get(data, path)
    except (KeyError, IndexError, TypeError):
        return False
    return True


def _references(item: Any) -> list[str]:
    inputs = item.get("inputs") if isinstance(item, dict) else None
    if isinstance(inputs, str):
        return [inputs]
    return [ref for ref in inputs if isinstance(ref, str)] if isinstance(inputs, list) else []


def _label(item: Any) -> str:
    kind = "block instance" if "use" in item else "node"
    name = item.get("name")
    return f"{kind} '{name}'" if isinstance(name, str) else f"a '{item.get('op')}' node"


class _Index:
    """The items of an inherited list by the names they are written with."""

    def __init__(
        self,
        items: list[Any],
        what: str,
        list_path: PathKey,
        locations: LocationTree,
        file: str,
        blocks: dict[str, Any],
    ) -> None:
        self.what = what
        self.items = items
        self.blocks = blocks
        self.list_path = list_path
        self.locations = locations
        self.file = file
        self.by_name: dict[str, list[int]] = {}
        self.overridden: dict[int, str] = {}
        for i, item in enumerate(items):
            name = item.get("name") if isinstance(item, dict) else None
            if isinstance(name, str):
                self.by_name.setdefault(name, []).append(i)

    def find(self, name: str, location: Location, action: str) -> int:
        found = self.by_name.get(name, [])
        if not found:
            raise SpecError(
                f"{action}: no node or block instance named '{name}' in {self.what}",
                location,
                hint=block_origin(name, self.items, self.blocks)
                or did_you_mean(name, self.by_name),
            )
        if len(found) > 1:
            raise SpecError(
                f"{action}: '{name}' names {len(found)} items of {self.what}, so which one "
                "is meant is not clear",
                location,
                notes=[
                    f"written at {self.locations.value_at((*self.list_path, i), self.file)}"
                    for i in found
                ],
            )
        return found[0]

    def claim(
        self, i: int, name: str, action: str, gone: dict[int, str], location: Location
    ) -> None:
        if i in gone:
            raise SpecError(f"'{name}' is {gone[i]} already", location)
        if i in self.overridden:
            raise SpecError(
                f"'{name}' is both overridden and {action}", location, hint="keep one of the two"
            )
        gone[i] = action
