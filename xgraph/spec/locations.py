"""The locations of a document as a tree of its keys and indices.

`extends` moves, replaces and drops whole parts of a document, each carrying the locations
of everything inside it. In a flat table keyed by path, each such edit scans every location
of the document, and a few thousand edits of a large spec take minutes; in a tree, an edit
costs as much as the part it moves.
"""

from __future__ import annotations

from xgraph.errors import Location
from xgraph.spec.source import PathKey, SourceMap


class LocationTree:
    """Where the value at this path (and the key naming it) were written, and the same for
    each part inside it."""

    __slots__ = ("children", "key", "value")

    def __init__(self) -> None:
        self.value: Location | None = None
        self.key: Location | None = None
        self.children: dict[str | int, LocationTree] = {}

    @classmethod
    def of(cls, where: SourceMap) -> LocationTree:
        root = cls()
        for path, location in where.values.items():
            root.node(path).value = location
        for path, location in where.keys.items():
            root.node(path).key = location
        return root

    def node(self, path: PathKey) -> LocationTree:
        """The tree at `path`, made (empty) where it does not exist yet."""
        tree = self
        for part in path:
            child = tree.children.get(part)
            if child is None:
                child = tree.children[part] = LocationTree()
            tree = child
        return tree

    def find(self, path: PathKey) -> LocationTree | None:
        tree: LocationTree | None = self
        for part in path:
            if tree is None:
                return None
            tree = tree.children.get(part)
        return tree

    def value_at(self, path: PathKey, file: str) -> Location:
        """As `SourceMap.value`: the location of `path`, or of its nearest enclosing value."""
        tree, found = self, self.value
        for part in path:
            child = tree.children.get(part)
            if child is None:
                break
            tree = child
            found = tree.value or found
        return found or Location(file, 1, 1)

    def drop(self, path: PathKey) -> None:
        """Forget `path` and everything inside it."""
        parent = self.find(path[:-1])
        if parent is not None:
            parent.children.pop(path[-1], None)

    def place(self, path: PathKey, tree: LocationTree | None) -> None:
        """A copy of `tree` becomes what is known at `path`, replacing what was there."""
        if tree is None:
            self.drop(path)
        else:
            self.node(path[:-1]).children[path[-1]] = tree.copy()

    def copy(self) -> LocationTree:
        twin = LocationTree()
        twin.value, twin.key = self.value, self.key
        twin.children = {part: child.copy() for part, child in self.children.items()}
        return twin

    def source_map(self, file: str) -> SourceMap:
        where = SourceMap(file)
        stack: list[tuple[PathKey, LocationTree]] = [((), self)]
        while stack:
            path, tree = stack.pop()
            if tree.value is not None:
                where.values[path] = tree.value
            if tree.key is not None:
                where.keys[path] = tree.key
            stack.extend(((*path, part), child) for part, child in tree.children.items())
        return where
