"""Which node of one graph is which node of another, for `xgraph diff`.

Matching by global name fails for variants: with 4 middle blocks instead of 8, Xception's
exit flow is `block9`, and `block9_sepconv2` of the base is a middle-flow conv. So nodes are
matched structurally, level by level of block instances: at each level the items (loose
nodes, keyed by their name, and block instances, keyed by the block they instantiate and
their name without its number: `middle3` by `xception_module middle`) are
aligned in order as difflib aligns lines; an instance matched to an instance matches its
nodes the same way one level down, a node's name taken relative to its instance
(`block13_sepconv1` in `block13` and `block9_sepconv1` in `block9` are both `_sepconv1`).
Items left over on both sides with the same name are matched too, then the nodes left over
by their own name, so that a node moved elsewhere, or replaced by a block instance that
keeps its name, reads as changed, not as removed and added. Last, the nodes still left over
on both sides are matched by structure, as B orders them: a node of B is the first leftover
node of A with its op, its attributes and its inputs (A's named as matched so far), so that
a node only renamed (Keras's automatic `add_3` for the spec's `block5_add`) reads as renamed.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from xgraph.ir.graph import Graph, Node


@dataclass
class _Item:
    """A loose node (`node` set) or a block instance (`members` its nodes) at one level."""

    key: tuple[str, str]
    name: str
    node: Node | None = None
    use: str = ""
    members: list[Node] = field(default_factory=list)
    relative: str = ""  # an instance's name within the instance around it


@dataclass
class Matching:
    """Pairs of (node of A, node of B), and the block instances matched under another name."""

    pairs: list[tuple[Node, Node]] = field(default_factory=list)
    renamed: list[tuple[str, str, str]] = field(default_factory=list)  # (in A, in B, block)
    # The pairs matched by structure alone: their names tell nothing (no instance renamed
    # says why they differ), so a different name is a rename of the node itself.
    by_structure: list[tuple[Node, Node]] = field(default_factory=list)

    def a_to_b(self) -> dict[str, str]:
        return {x.name: y.name for x, y in self.pairs}


def relative_name(name: str, instance: str) -> str:
    """A node's name within its block instance: without the instance's name in front."""
    return name[len(instance) :] if instance and name.startswith(instance) else name


def _items(nodes: Iterable[Node], depth: int, instance: str) -> list[_Item]:
    items: list[_Item] = []
    instances: dict[str, _Item] = {}
    for node in nodes:
        if len(node.block) <= depth:
            items.append(_Item(("node", relative_name(node.name, instance)), node.name, node))
            continue
        name = node.block[depth]
        if name not in instances:
            use = node.block_uses[depth] if len(node.block_uses) > depth else name
            relative = relative_name(name, instance)
            stem = relative.rstrip("0123456789")
            instances[name] = _Item(("use", f"{use} {stem}"), name, use=use, relative=relative)
            items.append(instances[name])
        instances[name].members.append(node)
    return items


def _pair(x: _Item, y: _Item, depth: int, result: Matching) -> None:
    if x.node is not None and y.node is not None:
        result.pairs.append((x.node, y.node))
        return
    if x.relative != y.relative:  # not only because an instance around it was renamed
        result.renamed.append((x.name, y.name, y.use))
    _match(
        _items(x.members, depth + 1, x.name),
        _items(y.members, depth + 1, y.name),
        depth + 1,
        result,
    )


def _match(xs: list[_Item], ys: list[_Item], depth: int, result: Matching) -> None:
    aligner = SequenceMatcher(None, [x.key for x in xs], [y.key for y in ys], autojunk=False)
    left_x, left_y = set(range(len(xs))), set(range(len(ys)))
    for block in aligner.get_matching_blocks():
        for k in range(block.size):
            _pair(xs[block.a + k], ys[block.b + k], depth, result)
            left_x.discard(block.a + k)
            left_y.discard(block.b + k)
    by_name = {(ys[j].name, ys[j].node is None): j for j in sorted(left_y)}
    for i in sorted(left_x):
        j = by_name.get((xs[i].name, xs[i].node is None))
        if j is not None:
            _pair(xs[i], ys[j], depth, result)
            left_x.discard(i)
            left_y.discard(j)
    # Last, nodes by their own name, whatever holds them: a node replaced by a block
    # instance that keeps its name (a separable conv made two convs) is that node.
    in_y = {node.name: node for j in sorted(left_y) for node in _nodes(ys[j])}
    for i in sorted(left_x):
        for node in _nodes(xs[i]):
            if node.name in in_y:
                result.pairs.append((node, in_y[node.name]))


def _nodes(item: _Item) -> list[Node]:
    return [item.node] if item.node is not None else item.members


def _downstream(nodes: list[Node]) -> dict[str, str]:
    """Each node's op and attributes with, recursively, those of the nodes it feeds (and
    the input position): tells apart siblings alike in op, attributes and input
    (InceptionV3's 1x1 convolutions of one input) by what they lead to."""
    consumers: dict[str, list[tuple[str, int]]] = {}
    for node in nodes:
        for position, source in enumerate(node.inputs):
            consumers.setdefault(source, []).append((node.name, position))
    found: dict[str, str] = {}
    for node in reversed(nodes):
        fed = sorted(f"{position}:{found[c]}" for c, position in consumers.get(node.name, []))
        text = repr((node.op, node.attrs.model_dump(), fed))
        found[node.name] = hashlib.sha256(text.encode()).hexdigest()
    return found


def _match_by_structure(a: list[Node], b: list[Node], result: Matching) -> None:
    """Pair the nodes left over on both sides that compute the same thing from the same
    (matched) inputs, walking `b` in order so that a node's inputs are paired before it;
    of several such nodes, the one that leads to the same (`_downstream`)."""
    a_to_b = result.a_to_b()
    matched_b = set(a_to_b.values())
    left_a = [x for x in a if x.name not in a_to_b]
    ahead_a, ahead_b = _downstream(a), _downstream(b)
    for y in b:
        if y.name in matched_b:
            continue
        fits = [
            index
            for index, x in enumerate(left_a)
            if x.op == y.op
            and [a_to_b.get(name) for name in x.inputs] == list(y.inputs)
            and x.attrs == y.attrs
        ]
        if not fits:
            continue
        index = next((i for i in fits if ahead_a[left_a[i].name] == ahead_b[y.name]), fits[0])
        x = left_a.pop(index)
        result.pairs.append((x, y))
        result.by_structure.append((x, y))
        a_to_b[x.name] = y.name


def match_nodes(a: Iterable[Node], b: Iterable[Node]) -> Matching:
    """The nodes of `a` and `b` that are the same node of the architecture (module doc);
    `b` in topological order (as `Graph.nodes`) for the last, structural stage."""
    nodes_a, nodes_b = list(a), list(b)
    result = Matching()
    _match(_items(nodes_a, 0, ""), _items(nodes_b, 0, ""), 0, result)
    _match_by_structure(nodes_a, nodes_b, result)
    return result


def whole_instances(nodes: list[Node], unmatched: set[str]) -> dict[str, tuple[str, str]]:
    """For each unmatched node, the outermost block instance around it all of whose nodes are
    unmatched, with its block: ("", "") where there is none."""
    members: dict[tuple[str, ...], list[str]] = {}
    for node in nodes:
        for depth in range(1, len(node.block) + 1):
            members.setdefault(node.block[:depth], []).append(node.name)
    found: dict[str, tuple[str, str]] = {}
    for node in nodes:
        if node.name not in unmatched:
            continue
        found[node.name] = ("", "")
        for depth in range(1, len(node.block) + 1):
            if all(name in unmatched for name in members[node.block[:depth]]):
                use = node.block_uses[depth - 1] if len(node.block_uses) >= depth else ""
                found[node.name] = (node.block[depth - 1], use)
                break
    return found


def braced(names: list[str]) -> str:
    """Several names as a shell's brace expansion writes them: `block{5..8}`, `b{1,3}`."""
    if len(names) == 1:
        return names[0]
    parts = [re.fullmatch(r"(.*?)(\d+)", name) for name in names]
    stems = {part.group(1) for part in parts if part}
    if all(parts) and len(stems) == 1:
        numbers = [int(part.group(2)) for part in parts if part]
        stem = stems.pop()
        if numbers == list(range(numbers[0], numbers[0] + len(numbers))):
            return f"{stem}{{{numbers[0]}..{numbers[-1]}}}"
        return stem + "{" + ",".join(str(n) for n in numbers) + "}"
    prefix = os.path.commonprefix(names)  # noqa: RUF071 (names, not paths)
    if any(name == prefix for name in names):
        prefix = ""
    return prefix + "{" + ",".join(name[len(prefix) :] for name in names) + "}"


def matched_sources(
    graph: Graph, name: str, unmatched: set[str], renames: dict[str, str]
) -> tuple[str, ...]:
    """The matched nodes that `name` stands for (by their name in B): itself, or, for a node
    added or removed, the matched nodes its unmatched ancestors reach first."""
    found: set[str] = set()
    stack, seen = [name], set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        if current in unmatched:
            stack.extend(graph[current].inputs)
        else:
            found.add(renames.get(current, current))
    return tuple(sorted(found))
