"""What differs between two specs after expansion: parameters, nodes added, removed,
renamed and changed, and the totals. Nodes are matched structurally, within their block
instances (xgraph.reports.matching), so a variant with fewer repeats compares its exit flow
with the base's exit flow, not with a middle-flow block that happens to carry the same name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.reports.matching import (
    match_nodes,
    matched_sources,
    whole_instances,
)

TOTALS = ("nodes", "total_params", "trainable_params", "non_trainable_params", "macs")


@dataclass(frozen=True)
class NodeFacts:
    """A node as the diff shows it: op, output shape and counts."""

    name: str
    op: str
    output_shape: tuple[int, ...]
    trainable_params: int
    non_trainable_params: int
    macs: int
    # The outermost block instance around the node that was added or removed whole, and the
    # block it instantiates: the text shows such an instance as one row.
    instance: str = ""
    use: str = ""

    @property
    def params(self) -> int:
        return self.trainable_params + self.non_trainable_params


@dataclass(frozen=True)
class NodeChange:
    """A node in both specs whose op, attributes, inputs, shape or counts differ:
    each as (field, before, after)."""

    name: str
    changes: tuple[tuple[str, Any, Any], ...]
    before_name: str = ""  # its name in the first spec, where that differs
    instance: str = ""  # the outermost block instance around it, and the blocks it instantiates
    use: str = ""  # (`outer/inner` where instances nest)


@dataclass
class GraphDiff:
    before: str
    after: str
    added: list[NodeFacts] = field(default_factory=list)
    removed: list[NodeFacts] = field(default_factory=list)
    changed: list[NodeChange] = field(default_factory=list)
    totals: dict[str, tuple[int, int]] = field(default_factory=dict)
    # The graph's inputs and outputs (names, in order), where they differ.
    interface: list[tuple[str, list[str], list[str]]] = field(default_factory=list)
    # Parameters whose values differ: (name, before, after), None where a spec lacks it.
    params: list[tuple[str, Any, Any]] = field(default_factory=list)
    # Block instances matched under another name: (name before, name after, block).
    renamed: list[tuple[str, str, str]] = field(default_factory=list)
    # Nodes matched by structure under another name, nothing else changed: (before, after).
    # (A renamed node that changed too is in `changed`, with its `before_name`.)
    renamed_nodes: list[tuple[str, str]] = field(default_factory=list)
    # Spec-wide `defaults:` that differ: ("op.attribute", before, after), None where unset;
    # with the number of node attributes each changed (left out of `changed`).
    defaults: list[tuple[str, Any, Any]] = field(default_factory=list)
    by_defaults: dict[str, int] = field(default_factory=dict)

    @property
    def same(self) -> bool:
        different = (
            self.added,
            self.removed,
            self.changed,
            self.interface,
            self.params,
            self.renamed,
            self.renamed_nodes,
            self.defaults,
        )
        return not any(different) and all(a == b for a, b in self.totals.values())


# The fields of a node that follow from the shapes of its inputs (and so from the input
# size, the width of earlier layers, ...): `ignore_shapes` leaves them out.
SHAPE_FIELDS = ("output_shape", "trainable_params", "non_trainable_params", "macs")


def _facts(analysed: AnalysedGraph, node: Node, whole: tuple[str, str] = ("", "")) -> NodeFacts:
    counts = analysed.counts[node.name]
    return NodeFacts(
        node.name,
        node.op,
        tuple(analysed.shapes[node.name]),
        counts.trainable,
        counts.non_trainable,
        counts.macs,
        *whole,
    )


def _attributes(node: Node) -> dict[str, Any]:
    """The node's attributes, defaults filled in, with those at their op's default left out
    where the other op lacks them (so `depth_multiplier: 1` does not show as a change)."""
    return node.attrs.model_dump()


def _default(node: Node, name: str) -> Any:
    info = type(node.attrs).model_fields.get(name)
    return None if info is None else info.default


# (op, attribute) -> its `defaults:` before and after, None where the spec set none
Explained = dict[tuple[str, str], tuple[Any, Any]]


def _changes(
    a: AnalysedGraph,
    b: AnalysedGraph,
    x: Node,
    y: Node,
    rewired: bool,
    ignore_shapes: bool,
    explained: Explained,
    by_defaults: dict[str, int],
) -> list[tuple[str, Any, Any]]:
    changes: list[tuple[str, Any, Any]] = []
    if x.op != y.op:
        changes.append(("op", x.op, y.op))
    old, new = _attributes(x), _attributes(y)
    if ignore_shapes and x.op == y.op == "input":
        old.pop("shape", None), new.pop("shape", None)
    for key in [*old, *(k for k in new if k not in old)]:
        if key in old and key in new:
            if old[key] == new[key]:
                continue
            if _explained(x, y, key, explained, old[key], new[key]):
                name = f"{x.op}.{key}"
                by_defaults[name] = by_defaults.get(name, 0) + 1
            else:
                changes.append((key, old[key], new[key]))
        elif key in old and old[key] != _default(x, key):
            changes.append((key, old[key], None))
        elif key in new and new[key] != _default(y, key):
            changes.append((key, None, new[key]))
    if rewired:
        changes.append(("inputs", list(x.inputs), list(y.inputs)))
    if ignore_shapes:
        return changes
    fx, fy = _facts(a, x), _facts(b, y)
    for name in SHAPE_FIELDS:
        if getattr(fx, name) != getattr(fy, name):
            changes.append((name, getattr(fx, name), getattr(fy, name)))
    return changes


def diff_params(a: AnalysedGraph, b: AnalysedGraph) -> list[tuple[str, Any, Any]]:
    """The parameters whose values differ, in `a`'s order then `b`'s new ones."""
    names = [*a.params, *(name for name in b.params if name not in a.params)]
    return [
        (name, a.params.get(name), b.params.get(name))
        for name in names
        if a.params.get(name) != b.params.get(name)
    ]


def _defaults(analysed: AnalysedGraph) -> dict[str, Any]:
    """The spec's `defaults:` as "op.attribute" -> value."""
    declared = analysed.sections.get("defaults") or {}
    return {
        f"{op}.{attr}": value for op, values in declared.items() for attr, value in values.items()
    }


def diff_defaults(a: AnalysedGraph, b: AnalysedGraph) -> list[tuple[str, Any, Any]]:
    """The spec-wide defaults whose values differ, in `a`'s order then `b`'s new ones."""
    old, new = _defaults(a), _defaults(b)
    names = [*old, *(name for name in new if name not in old)]
    return [
        (name, old.get(name), new.get(name)) for name in names if old.get(name) != new.get(name)
    ]


def _explained(x: Node, y: Node, key: str, defaults: Explained, old: Any, new: Any) -> bool:
    """Whether a changed `defaults:` entry accounts for the change of `key`: from the old
    default (the op's own where the spec set none) to the new one."""
    pair = defaults.get((x.op, key)) if x.op == y.op else None
    if pair is None:
        return False
    before = _default(x, key) if pair[0] is None else pair[0]
    after = _default(y, key) if pair[1] is None else pair[1]
    return (old, new) == (before, after)


def diff_graphs(a: AnalysedGraph, b: AnalysedGraph, ignore_shapes: bool = False) -> GraphDiff:
    """Nodes of `b` not in `a` (added, in `b`'s order), of `a` not in `b` (removed, in `a`'s
    order), in both but different (changed) or only renamed, the parameters that differ and
    the totals of each. `ignore_shapes` leaves out the changes of shape and counts of nodes
    that are otherwise the same (the totals still show their sum). A node attribute that
    changes as a changed `defaults:` entry does is counted under that entry, not listed per
    node."""
    result = GraphDiff(a.name, b.name)
    matching = match_nodes(a.graph.nodes, b.graph.nodes)
    renames = matching.a_to_b()
    result.renamed = matching.renamed
    result.defaults = diff_defaults(a, b)
    explained: Explained = {}
    for name, old, new in result.defaults:
        op, _, attr = name.partition(".")
        explained[(op, attr)] = (old, new)
    before_of = {y.name: x for x, y in matching.pairs}
    # Renamed by structure alone: no instance renamed explains the new name, so say it.
    renamed_by_structure = {y.name for x, y in matching.by_structure if x.name != y.name}
    added = {node.name for node in b.graph.nodes if node.name not in before_of}
    removed = {node.name for node in a.graph.nodes if node.name not in renames}

    # An input compares as the matched nodes it stands for: a node fed around blocks that
    # were added or removed (the exit flow after a shorter middle flow) is not rewired.
    def sources_a(name: str) -> tuple[str, ...]:
        return matched_sources(a.graph, name, removed, renames)

    def sources_b(name: str) -> tuple[str, ...]:
        return matched_sources(b.graph, name, added, {})

    whole_added = whole_instances(list(b.graph.nodes), added)
    whole_removed = whole_instances(list(a.graph.nodes), removed)
    for node in b.graph.nodes:
        if node.name in added:
            result.added.append(_facts(b, node, whole_added[node.name]))
            continue
        x = before_of[node.name]
        rewired = [sources_a(name) for name in x.inputs] != [sources_b(n) for n in node.inputs]
        changes = _changes(a, b, x, node, rewired, ignore_shapes, explained, result.by_defaults)
        if changes:
            instance = node.block[0] if node.block else ""
            use = "/".join(node.block_uses)
            was = x.name if x.name != node.name else ""
            result.changed.append(NodeChange(node.name, tuple(changes), was, instance, use))
        elif node.name in renamed_by_structure:
            result.renamed_nodes.append((x.name, node.name))
    result.removed = [
        _facts(a, node, whole_removed[node.name]) for node in a.graph.nodes if node.name in removed
    ]
    for edge in ("inputs", "outputs"):
        before, after = list(getattr(a.graph, edge)), list(getattr(b.graph, edge))
        if [sources_a(name) for name in before] != [sources_b(name) for name in after]:
            result.interface.append((edge, before, after))
    result.params = diff_params(a, b)
    for key in TOTALS:
        result.totals[key] = (
            (len(a.graph), len(b.graph)) if key == "nodes" else (getattr(a, key), getattr(b, key))
        )
    return result
