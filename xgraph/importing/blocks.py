"""Repeated structure recovered from an imported model: runs of nodes named after one
instance (`block5_sepconv1`, `block5_add`: instance `block5`), with the source's
automatically named layers beside them (Keras's `conv2d_3`, `add_7`) taken in, become
instances of one block where two or more have the same layers and wiring; the values that
differ become the block's parameters, and consecutive instances numbered on whose arguments
follow their number become one `repeat`.

Deterministic: instance names come from node names at one level of their `_`-separated
parts (the level that recovers the most), every choice is listed by `explain`, and the
writer keeps the result only if it expands to the very graph it came from.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from xgraph.importing.model import ImportedModel, ImportedNode
from xgraph.ir.analysis import AnalysedGraph

_NUMBERED = re.compile(r"^(.*?)(\d+)$")
_CALL_COST = 1  # the line a call takes, against the lines of the nodes it stands for


def instance_key(name: str, level: int) -> str | None:
    """The `level`-th prefix of `name` (1: the first) that ends in a part with a digit and
    leaves at least one part after it: `block5` of `block5_sepconv1_act` (level 1),
    `conv2_block1` of `conv2_block1_1_conv` (level 2)."""
    parts = name.split("_")
    found = 0
    for end in range(1, len(parts)):
        if any(ch.isdigit() for ch in parts[end - 1]):
            found += 1
            if found == level:
                return "_".join(parts[:end])
    return None


def _number(node: ImportedNode) -> int:
    """The number of an automatically named node: `conv2d_3` 3, `conv2d` 0."""
    rest = node.name[len(node.automatic) :]
    return int(rest[1:]) if rest else 0


@dataclass
class Instance:
    """Consecutive nodes of one instance, with the one value they take from outside."""

    key: str
    nodes: list[ImportedNode]
    input: str = ""
    skeleton: tuple[Any, ...] = ()
    values: list[Any] = field(default_factory=list)  # the varying slots' values, in order
    slots: list[tuple[int, str]] = field(default_factory=list)  # (node index, attr or "#")
    lacks: frozenset[str] = frozenset()  # the block's optional nodes this one has not


def _assign(model: ImportedModel, level: int) -> dict[str, str]:
    """node -> instance key: named nodes by their key; an automatically named node with
    two inputs or more (a residual sum) joins the instance of its latest input that has
    one, one with a single input the instance all its consumers are in."""
    order = {node.name: index for index, node in enumerate(model.nodes)}
    consumers: dict[str, list[str]] = defaultdict(list)
    for node in model.nodes:
        for source in node.inputs:
            consumers[source].append(node.name)
    owner: dict[str, str] = {}
    for node in model.nodes:
        if node.op != "input" and not node.automatic:
            key = instance_key(node.name, level)
            if key is not None:
                owner[node.name] = key
    changed = True
    while changed:
        changed = False
        for node in model.nodes:
            if node.name in owner or not node.automatic:
                continue
            if len(node.inputs) > 1:
                owned = [source for source in node.inputs if source in owner]
                if owned:
                    owner[node.name] = owner[max(owned, key=order.__getitem__)]
                    changed = True
                continue
            keys = {owner.get(c) for c in consumers[node.name]}
            if len(keys) == 1 and None not in keys:
                owner[node.name] = keys.pop()  # type: ignore[assignment]
                changed = True
    return owner


def _instances(model: ImportedModel, owner: dict[str, str]) -> list[Instance]:
    """Each key's nodes where they are consecutive, take one value from outside and are
    read outside at their last node only."""
    consumers: dict[str, set[str]] = defaultdict(set)
    for node in model.nodes:
        for source in node.inputs:
            consumers[source].add(node.name)
    runs: dict[str, list[int]] = defaultdict(list)
    for index, node in enumerate(model.nodes):
        if node.name in owner:
            runs[owner[node.name]].append(index)
    found = []
    for key, indices in runs.items():
        if indices != list(range(indices[0], indices[-1] + 1)) or len(indices) < 2:
            continue
        nodes = [model.nodes[i] for i in indices]
        inside = {n.name for n in nodes}
        outside = {s for n in nodes for s in n.inputs if s not in inside}
        leaks = any(consumers[n.name] - inside or n.name in model.outputs for n in nodes[:-1])
        if len(outside) == 1 and not leaks:
            found.append(Instance(key, nodes, outside.pop()))
    return found


def _describe(instance: Instance) -> None:
    """The instance's structure (its skeleton) and the values that may vary between the
    instances of one structure: scalar attributes and automatic names' numbers."""
    prefix = f"{instance.key}_"
    local_of: dict[str, str] = {}
    seen: dict[str, int] = defaultdict(int)
    for node in instance.nodes:
        if node.automatic:
            local_of[node.name] = f"<{node.automatic}#{seen[node.automatic]}>"
            seen[node.automatic] += 1
        elif node.name.startswith(prefix):
            local_of[node.name] = node.name[len(prefix) :]
        else:
            local_of[node.name] = f"<named:{node.name}>"  # kept as is: not shareable
    skeleton: list[Any] = []
    for index, node in enumerate(instance.nodes):
        refs = tuple(local_of.get(s, "<input>") for s in node.inputs)
        fixed = []
        for attr, value in sorted(node.attrs.items()):
            if isinstance(value, bool | int | float | str) and value is not None:
                instance.slots.append((index, attr))
                instance.values.append(value)
                fixed.append((attr, type(value).__name__))
            else:
                fixed.append((attr, repr(value)))
        if node.automatic:
            instance.slots.append((index, "#"))
            instance.values.append(_number(node))
        skeleton.append((local_of[node.name], node.op, refs, tuple(fixed)))
    instance.skeleton = tuple(skeleton)


def _without(skeleton: tuple[Any, ...], local: str) -> tuple[Any, ...] | None:
    """`skeleton` without its node `local` (one input, named, not the last), its readers
    reading that node's input instead: Xception's block2, which has no sepconv1_act."""
    entries = [entry for entry in skeleton if entry[0] == local]
    if len(entries) != 1 or skeleton[-1][0] == local or local.startswith("<"):
        return None
    (_, _, refs, _) = entries[0]
    if len(refs) != 1 or (refs[0].startswith("<") and refs[0] != "<input>"):
        return None
    return tuple(
        (name, op, tuple(refs[0] if ref == local else ref for ref in inputs), fixed)
        for name, op, inputs, fixed in skeleton
        if name != local
    )


def _aligned(instance: Instance, first: Instance) -> list[Any]:
    """`instance`'s values in the slots of `first` (a lacking node's: `first`'s)."""
    own = {
        (instance.skeleton[index][0], attr): value
        for (index, attr), value in zip(instance.slots, instance.values, strict=True)
    }
    return [
        own.get((first.skeleton[index][0], attr), value)
        for (index, attr), value in zip(first.slots, first.values, strict=True)
    ]


def _merge_lacking(groups: list[list[Instance]]) -> list[list[Instance]]:
    """An instance alone in its structure joins a shared one that has one node more."""
    shared = [g for g in groups if len(g) >= 2]
    result = [g for g in groups if len(g) >= 2]
    for group in groups:
        if len(group) >= 2:
            continue
        (alone,) = group
        for target in shared:
            skeleton = target[0].skeleton
            if len(skeleton) != len(alone.skeleton) + 1:
                continue
            missing = [e[0] for e in skeleton if e[0] not in {a[0] for a in alone.skeleton}]
            if len(missing) == 1 and _without(skeleton, missing[0]) == alone.skeleton:
                alone.lacks = frozenset(missing)
                target.append(alone)
                break
        else:
            result.append(group)
    return result


@dataclass
class Block:
    """One recovered block: its name, instances (in the model's order), the parameter of
    each varying slot (or None: the same value everywhere), the parameters' types, and the
    optional nodes (`has_<node>`: false in the instances that lack it)."""

    name: str
    instances: list[Instance]
    slot_param: list[str | None]
    params: dict[str, str]
    optional: dict[str, str] = field(default_factory=dict)  # local -> its bool parameter


def _block(name: str, group: list[Instance]) -> Block:
    group.sort(key=lambda inst: inst.lacks != frozenset())  # a complete one first
    first = group[0]
    for inst in group[1:]:
        inst.values = _aligned(inst, first)
        inst.slots = list(first.slots)
    columns = list(zip(*(inst.values for inst in group), strict=True))
    param_of: dict[tuple[Any, ...], str] = {}
    slot_param: list[str | None] = []
    params: dict[str, str] = {}
    locals_ = [entry[0] for entry in first.skeleton]
    for (index, attr), column in zip(first.slots, columns, strict=True):
        if len(set(map(repr, column))) == 1:
            slot_param.append(None)
            continue
        key = tuple(map(repr, column))
        if key not in param_of:
            local = locals_[index]
            base = "number" if attr == "#" else attr
            if base in params:  # `add_number` of `<add#0>`, `sepconv2_filters` of `sepconv2`
                local = local[1:].split("#")[0] if local.startswith("<") else local
                base = f"{_identifier(local)}_{base}"
            param = base
            while param in params:
                param += "_"
            param_of[key] = param
            params[param] = type(column[0]).__name__
        slot_param.append(param_of[key])
    optional = {}
    for local in sorted({m for inst in group for m in inst.lacks}):
        optional[local] = f"has_{_identifier(local)}"
        params[optional[local]] = "bool"
    return Block(name, group, slot_param, params, optional)


def _identifier(text: str) -> str:
    """`text` as a parameter name: ResNet's local `3_conv` as `conv_3`."""
    name = re.sub(r"\W", "_", text).strip("_") or "node"
    if leading := re.match(r"^(\d+)_(.+)$", name):
        name = f"{leading.group(2)}_{leading.group(1)}"
    return name if not name[0].isdigit() else f"n{name}"


def _score(blocks: Sequence[Block]) -> int:
    return sum(len(inst.nodes) - _CALL_COST for block in blocks for inst in block.instances) - sum(
        len(block.instances[0].nodes) for block in blocks
    )


def recover(model: ImportedModel) -> list[Block]:
    """The blocks of the level that saves the most lines (none where no level shares)."""
    best: list[Block] = []
    for level in (1, 2):
        instances = _instances(model, _assign(model, level))
        groups: dict[tuple[Any, ...], list[Instance]] = defaultdict(list)
        for inst in instances:
            _describe(inst)
            groups[inst.skeleton].append(inst)
        shared = [g for g in _merge_lacking(list(groups.values())) if len(g) >= 2]
        names: dict[str, int] = defaultdict(int)
        blocks = []
        for group in sorted(shared, key=lambda g: -len(g)):
            stem = _identifier(re.sub(r"\d+", "", group[0].key).replace("__", "_")) or "block"
            names[stem] += 1
            blocks.append(_block(stem if names[stem] == 1 else f"{stem}_{names[stem]}", group))
        if _score(blocks) > _score(best):
            best = blocks
    return best


def explain(analysed: AnalysedGraph) -> list[str]:
    """Which nodes became which block instance, one line per instance, from the spec as
    written (its graph records each node's instance and block)."""
    members: dict[str, list[str]] = defaultdict(list)
    block_of: dict[str, str] = {}
    for node in analysed.graph.nodes:
        if node.block:
            members[node.block[0]].append(node.name)
            block_of[node.block[0]] = node.block_uses[0] if node.block_uses else "?"
    return [
        f"{instance}: block '{block_of[instance]}', {len(names)} nodes {names[0]} .. {names[-1]}"
        for instance, names in members.items()
    ]


def arithmetic(column: Sequence[Any]) -> tuple[int, int] | None:
    """(start, step) where the integers of `column` go start, start + step, ..."""
    if not all(type(v) is int for v in column) or len(column) < 2:
        return None
    step = column[1] - column[0]
    if all(b - a == step for a, b in itertools.pairwise(column)):
        return column[0], step
    return None


def numbered(key: str) -> tuple[str, int] | None:
    found = _NUMBERED.match(key)
    return (found.group(1), int(found.group(2))) if found else None
