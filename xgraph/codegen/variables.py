"""Variables for values: `x` along the main path, a name of its own for a value off it.

The statements come in without variables (`Slot`: the values, node names, they read and
write) and go out as frozen statements that read and write Python variables, with the
`shortcut = x` copies that keep a value alive inserted where needed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from xgraph.codegen.model import BLOCK_INPUT, BlockCall, Comment, LayerStep, Rename, Statement
from xgraph.codegen.names import identifier


@dataclass(frozen=True)
class Slot:
    """A statement before it has variables: the values it reads and the one it writes, and
    the variable name it would like for it."""

    item: LayerStep | BlockCall
    inputs: tuple[str, ...]
    output: str
    preferred: str


def _main_path(slots: Sequence[Slot], output: str) -> set[str]:
    """The values from `output` back along first inputs: the ones that live in `x`."""
    made_by = {s.output: s for s in slots}
    path = {output}
    while output in made_by and made_by[output].inputs:
        output = made_by[output].inputs[0]
        path.add(output)
    return path


def allocate(
    slots: Sequence[Slot | Comment],
    scope_inputs: dict[str, str],
    keep: Sequence[str],
    reserved: set[str],
    input_name: str,
) -> tuple[list[Statement], dict[str, str]]:
    """Give every value a variable: `x` along the main path (from the first value of `keep`
    back along first inputs), a name of its own for a value off it (a residual branch), kept
    through the chain of layers that continue it; a value still needed when the main path
    moves on is first copied to a name of its own (`shortcut = x`). Returns the statements
    and each value's last variable."""
    real = [s for s in slots if isinstance(s, Slot)]
    last: dict[str, float] = {}
    for index, slot in enumerate(real):
        for value in slot.inputs:
            last[value] = index
    for value in keep:
        last[value] = float("inf")
    main = _main_path(real, keep[0]) if keep else set()
    var_of = dict(scope_inputs)
    holder = {var: value for value, var in scope_inputs.items()}
    preferred = {s.output: s.preferred for s in real}

    def free(var: str, index: int) -> bool:
        return var not in holder or last.get(holder[var], -1) <= index

    def fresh(value: str, index: int) -> str:
        base = preferred.get(value, input_name if value == BLOCK_INPUT else value)
        name = identifier(base, "value")
        while name in reserved or name == "x" or not free(name, index):
            name += "_"
        return name

    body: list[Statement] = []
    index = 0
    for entry in slots:
        if isinstance(entry, Comment):
            body.append(entry)
            continue
        slot = entry
        inputs = tuple(var_of[v] for v in slot.inputs)
        first = slot.inputs[0] if slot.inputs else None
        carry = ""
        if slot.output in main:
            if not free("x", index):
                kept = holder["x"]
                dying = [v for v in inputs[1:] if v != "x" and free(v, index)]
                if isinstance(slot.item, BlockCall) and dying:
                    carry = target = dying[0]  # `x, previous = cell(x, previous), x`
                else:
                    target = fresh(kept, index)
                    body.append(Rename(target, "x"))
                holder[target] = kept
                var_of[kept] = target
            out = "x"
        elif first is not None and var_of[first] != "x" and free(var_of[first], index):
            out = var_of[first]
        else:
            out = fresh(slot.output, index)
        holder[out] = slot.output
        var_of[slot.output] = out
        item = dataclasses.replace(slot.item, inputs=inputs, output=out)
        if carry and isinstance(item, BlockCall):
            item = dataclasses.replace(item, carry=carry)
        body.append(item)
        index += 1
    return body, var_of
