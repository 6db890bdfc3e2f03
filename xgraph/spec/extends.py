"""Variants by extension: a spec that says `extends: base.yaml` and then what differs.

The extending file is merged into its base (itself resolved first) before anything else
reads it, giving one plain spec document and one source map. Every value keeps the location
of the file that wrote it: an inherited node points into the base, an override into the
extending file, so later errors need to know nothing about `extends`.

What an extending file may say (docs/spec.md, "Variants: extends"):

- `name`, `description`, `initializer`, `inputs`, `outputs`, `nodes`: replace the base's;
- `params`: per parameter, new declarations, or keys merged into an inherited one;
- `training`: merged setting by setting (xgraph.training.section);
- `blocks`: per block, a whole new block (it gives `nodes`), or edits of an inherited one;
- `override`, `remove`, `replace`, `insert`: edits of the inherited `nodes`, by name
  (also allowed inside an edited block, on the block's nodes).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from xgraph.budgets import Budgets, active_budgets
from xgraph.errors import Location, SpecError, did_you_mean
from xgraph.spec.diagnostics import spec_error_from_validation
from xgraph.spec.locations import LocationTree
from xgraph.spec.model import Spec, Strict
from xgraph.spec.source import PathKey, Source, read_yaml_file

EDIT_KEYS = ("override", "remove", "replace", "insert")
_REPLACED_KEYS = ("xgraph", "name", "description", "initializer", "inputs", "outputs", "nodes")

Items = Annotated[list[Any], Field(min_length=1)]


class Insertion(Strict):
    """New items placed right after (or before) a named item of the inherited list."""

    after: str | None = None
    before: str | None = None
    nodes: Items

    @model_validator(mode="after")
    def _one_anchor(self) -> Insertion:
        if (self.after is None) == (self.before is None):
            raise ValueError("an insertion needs exactly one of 'after' and 'before'")
        return self


class NodeEdits(Strict):
    """Edits of an inherited list of nodes and `use` items, naming items as written."""

    override: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Keys set on a named item; a `use` item's args merge."
    )
    remove: list[str] = Field(default_factory=list, description="Items to leave out.")
    replace: dict[str, Items] = Field(
        default_factory=dict, description="A named item replaced by these items, in place."
    )
    insert: list[Insertion] = Field(default_factory=list)


class BlockExtension(NodeEdits):
    """A block of an extending spec: with `nodes`, a whole new block; else edits."""

    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    nodes: Items | None = None
    doc: str | None = None


class Extension(NodeEdits):
    """The top level of an extending spec."""

    xgraph: Literal[1]
    extends: str = Field(description="The base spec: a path relative to this file.")
    name: str | None = None
    description: str | None = None
    initializer: str | None = None
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    inputs: Items | None = None
    blocks: dict[str, BlockExtension] = Field(default_factory=dict)
    nodes: Items | None = None
    outputs: Items | None = None
    training: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Link:
    """One `extends`: the file that says it, the file it names, and where it says so."""

    file: Path  # resolved, for cycles
    shown: str
    base: Path
    base_shown: str
    location: Location


def is_extension(data: Any) -> bool:
    return isinstance(data, dict) and "extends" in data


def resolve_extends(source: Source, budgets: Budgets | None = None) -> Source:
    """`source` with its `extends` chain merged in; a spec without one is returned as is."""
    budgets = active_budgets(budgets)
    return _resolve(source, (), budgets)


def _resolve(source: Source, links: tuple[_Link, ...], budgets: Budgets) -> Source:
    if not is_extension(source.data):
        return source
    extension = _validate(source, Extension)
    where = source.where
    location = where.value(("extends",))
    written = extension.extends
    if "://" in written:
        raise SpecError(
            f"'extends' names a local file, not a URL: '{written[:80]}'",
            location,
            hint="download the base spec and extend the local copy",
        )
    # The file this spec was read from: as given for the first, else the real path of the
    # base read last, so that `..` means what it means to the OS behind a symlinked folder.
    this = links[-1].base if links else Path(where.file)
    base = this.parent / written
    shown = written if len(written) <= 80 else written[:77] + "..."
    try:
        link = _Link(
            this.resolve(),
            os.path.normpath(where.file),
            base.resolve(),
            os.path.normpath(base),
            location,
        )
        reason = None if base.is_file() else "it is not a file" if base.exists() else "no such file"
    except (OSError, ValueError) as exc:  # a name too long for the OS, or with a NUL
        raise SpecError(
            f"cannot read '{shown}', which this spec extends: {getattr(exc, 'strerror', exc)}",
            location,
        ) from None
    links = (*links, link)
    for index, earlier in enumerate(links):
        if earlier.file == link.base:
            cycle = links[index:]
            chain = " -> ".join([*(step.shown for step in cycle), cycle[0].shown])
            notes = [
                f"'{step.shown}' extends '{step.base_shown}' at {step.location}"
                for step in cycle[1:]
            ]
            raise SpecError(f"'extends' makes a cycle: {chain}", earlier.location, notes=notes)
    if len(links) > budgets.extends_depth:
        raise budgets.exceeded(
            "extends_depth",
            f"the chain of 'extends' from here is more than {budgets.extends_depth} files long",
            links[0].location,
            notes=["or extend a file nearer the end of the chain, or merge files of the chain"],
        )
    if reason is not None:
        raise SpecError(
            f"cannot read '{shown}', which this spec extends: {reason}",
            location,
            hint="'extends' is a path relative to the folder of the file that holds it",
        )
    parent = _resolve(read_yaml_file(base, link.base_shown, budgets), links, budgets)
    _validate(parent, Spec)
    return _Merge(parent, source).run(extension)


def _validate(source: Source, model: type[Strict]) -> Any:
    data = source.data
    if model is Extension and "xgraph" in data and data["xgraph"] != 1:
        raise SpecError(
            f"unsupported spec version {data['xgraph']!r}: this xgraph reads version 1",
            source.where.value(("xgraph",)),
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise spec_error_from_validation(exc, source.where, model, data) from None


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

    def run(self, extension: Extension) -> Source:
        given = self.ext.data
        for key in _REPLACED_KEYS:
            if key in given:
                self.set((key,), (key,))
        self.params(("params",), ("params",))
        self.training()
        for name in extension.blocks:
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
        index = _Index(items, what, list_path, self.locations, self.file)

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
    ) -> None:
        self.what = what
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
                hint=did_you_mean(name, self.by_name),
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


def load_yaml(path: str | Path, budgets: Budgets | None = None) -> Source:
    """Read and parse a spec file, with the specs it `extends` merged in."""
    budgets = active_budgets(budgets)
    source = read_yaml_file(path, budgets=budgets)
    if isinstance(source.data, dict) and "extends" in source.data:
        return resolve_extends(source, budgets)
    return source
