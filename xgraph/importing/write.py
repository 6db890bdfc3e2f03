"""An imported model as spec text a person would write: defaults left out, `inputs` only
where a node does not read the node before it, square pairs as one number, the input shape
and the classifier's width as parameters."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from xgraph import __version__
from xgraph.importing.blocks import Block, Instance, arithmetic, numbered
from xgraph.importing.model import ImportedModel, ImportedNode, inputs_of
from xgraph.ops import REGISTRY

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_YAML_WORDS = frozenset({"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"})
WIDTH = 96


def scalar(value: Any) -> str:
    """A value as YAML flow text that reads back as the same value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # the shortest text of the float32 the model computes with, without float64's
        # noise ((0.229 * 255) ** 2 is 3409.9760250000004); YAML 1.1 reads 1e-06 as a
        # string, so the mantissa gets a dot
        text = repr(float(np.format_float_positional(np.float32(value), unique=True, trim="0")))
        mantissa, e, exponent = text.partition("e")
        if mantissa.lstrip("-").isdigit():
            mantissa += ".0"
        return f"{mantissa}{e}{exponent}" if text not in ("inf", "-inf", "nan") else text
    if isinstance(value, list | tuple):
        return "[" + ", ".join(scalar(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{scalar(k)}: {scalar(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS:
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _simplified(value: Any) -> Any:
    """A pair as Keras users write it, `(3, 3)` as 3; tuples as lists (nested ones kept:
    a padding's `[[1, 1], [0, 1]]`)."""
    if isinstance(value, tuple | list):
        if len(value) == 2 and value[0] == value[1] and type(value[0]) is int:
            return value[0]
        return [list(item) if isinstance(item, tuple) else item for item in value]
    return value


# Attributes a person writes first (`filters: 32, kernel_size: 3`), then the op's order.
_FIRST = ("filters", "units", "kernel_size", "pool_size", "activation")


def written_attrs(node: ImportedNode) -> dict[str, Any]:
    """The node's attributes that differ from the op's defaults, in the order people write."""
    model = REGISTRY[node.op].attrs
    parsed = model.model_validate(node.attrs)
    written = {}
    fields = model.model_fields
    order = [k for k in _FIRST if k in fields] + [k for k in fields if k not in _FIRST]
    for key in order:
        info = fields[key]
        value = getattr(parsed, key)
        if not info.is_required() and value == info.default:
            continue
        if key in node.attrs or info.is_required():
            written[key] = _simplified(node.attrs[key])
    return written


def _entry(fields: dict[str, Any], indent: str) -> list[str]:
    """`- {key: value, ...}`, wrapped after a comma where it passes WIDTH columns."""
    parts = [f"{key}: {scalar(value)}" for key, value in fields.items()]
    lines = [f"{indent}- {{"]
    for index, part in enumerate(parts):
        end = ", " if index < len(parts) - 1 else "}"
        if len(lines[-1]) + len(part) + len(end) > WIDTH and not lines[-1].endswith("{"):
            lines[-1] = lines[-1].rstrip()
            lines.append(f"{indent}   ")
        lines[-1] += part + end
    return lines


def _header(model: ImportedModel, name: str | None, origin: str) -> tuple[list[str], bool]:
    """The spec's first lines (to `inputs:` included), and whether `classes` is a parameter."""
    inputs = inputs_of(model.nodes)
    last = model.nodes[-1]
    classes = (
        len(model.outputs) == 1
        and model.outputs[0] == last.name
        and last.op == "dense"
        and isinstance(last.attrs.get("units"), int)
    )
    lines = [
        f"# Imported by xgraph {__version__} from {origin or model.source}:",
        "# every node is a layer of the file, named as the file names it.",
        "xgraph: 1",
        f"name: {scalar(name or model.name)}",
    ]
    params: dict[str, str] = {}
    if len(inputs) == 1:
        default = scalar(list(inputs[0].attrs["shape"]))
        params["input_shape"] = f"{{type: shape, default: {default}}}"
    if classes:
        params["classes"] = f"{{type: int, default: {last.attrs['units']}, min: 1}}"
    if params:
        lines.append("params:")
        lines += [f"  {key}: {value}" for key, value in params.items()]
    lines.append("inputs:")
    for node in inputs:
        shape = "${input_shape}" if "input_shape" in params else list(node.attrs["shape"])
        lines += _entry({"name": node.name, "shape": shape}, "  ")
    return lines, classes


def _inputs_field(inputs: Sequence[str], previous: str | None) -> Any:
    """`inputs` as written: None where the node reads the one before it."""
    if list(inputs) == ([previous] if previous else []):
        return None
    return inputs[0] if len(inputs) == 1 else list(inputs)


def _block_lines(block: Block) -> list[str]:
    """A recovered block's definition: node names as expressions of `${name}` (or of the
    number of the source's automatic name), varying values as its parameters."""
    first = block.instances[0]
    prefix = f"{first.key}_"
    bound: dict[tuple[int, str], str] = {}
    for (index, attr), param in zip(first.slots, block.slot_param, strict=True):
        if param is not None:
            bound[(index, attr)] = param
    names: dict[str, str] = {}
    for index, node in enumerate(first.nodes):
        if node.automatic:
            param = bound.get((index, "#"))
            names[node.name] = (
                f"{node.automatic}${{'_' if {param} else ''}}${{{param} or ''}}"
                if param
                else node.name
            )
        else:
            names[node.name] = "${name}_" + node.name[len(prefix) :]
    lines = [f"  {block.name}:"]
    if block.params:
        lines.append("    params:")
        lines += [f"      {param}: {{type: {kind}}}" for param, kind in block.params.items()]
    lines.append("    nodes:")
    # an optional node (`when: has_<node>`): its readers read its input where it is absent
    switch = {}
    for node in first.nodes:
        local = node.name[len(prefix) :]
        if local in block.optional:
            source = node.inputs[0]
            other = "input" if source == first.input else f"name + '_{source[len(prefix) :]}'"
            switch[node.name] = (
                f"${{name + '_{local}' if {block.optional[local]} else {other}}}",
                block.optional[local],
            )
    previous: str | None = first.input
    for index, node in enumerate(first.nodes):
        fields: dict[str, Any] = {"name": names[node.name], "op": node.op, **written_attrs(node)}
        for (slot, attr), param in bound.items():
            if slot == index and attr != "#":
                fields[attr] = f"${{{param}}}"
        refs = [
            "${input}" if s == first.input else switch[s][0] if s in switch else names[s]
            for s in node.inputs
        ]
        wanted = _inputs_field(node.inputs, previous)
        if wanted is not None or any(s in switch for s in node.inputs):
            fields["inputs"] = refs[0] if len(refs) == 1 else refs
        if node.name in switch:
            fields["when"] = f"${{{switch[node.name][1]}}}"
        lines += _entry(fields, "      ")
        previous = node.name
    return lines


def _args(block: Block, instance: Instance) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for param, value in zip(block.slot_param, instance.values, strict=True):
        if param is not None:
            args[param] = value
    for local, param in block.optional.items():
        args[param] = local not in instance.lacks
    return args


def _progression(start: int, step: int) -> str:
    """`${i}`, `${i + 5}`, `${i * 2 + 1}`: the value of repetition i."""
    term = "i" if step == 1 else f"i * {step}"
    return f"${{{term}}}" if start == 0 else f"${{{term} + {start}}}"


def _use_items(block: Block, run: list[Instance], previous: str | None) -> list[str]:
    """One `use:` per instance, or one with `repeat` for a run numbered on whose arguments
    are constant or go up with the number."""
    keys = [numbered(inst.key) for inst in run]
    args = [_args(block, inst) for inst in run]
    chained = all(b.input == a.nodes[-1].name for a, b in itertools.pairwise(run))
    if len(run) >= 2 and chained and all(keys) and len({k[0] for k in keys if k}) == 1:
        stem, start = keys[0]  # type: ignore[misc]
        steps = [k[1] - start for k in keys if k]
        columns: dict[str, Any] = {}
        for param in args[0]:
            column = [a[param] for a in args]
            progression = arithmetic(column)
            if len({repr(v) for v in column}) == 1:
                columns[param] = column[0]
            elif progression is not None and steps == list(range(len(run))):
                columns[param] = _progression(*progression)
            else:
                columns = {}
                break
        if steps == list(range(len(run))) and len(columns) == len(args[0]):
            fields: dict[str, Any] = {"use": block.name, "name": f"{stem}{_progression(start, 1)}"}
            fields["repeat"] = len(run)
            if columns:
                fields["args"] = columns
            if run[0].input != previous:
                fields["inputs"] = run[0].input
            return _entry(fields, "  ")
    lines = []
    for inst, arguments in zip(run, args, strict=True):
        fields = {"use": block.name, "name": inst.key}
        if arguments:
            fields["args"] = arguments
        if inst.input != previous:
            fields["inputs"] = inst.input
        lines += _entry(fields, "  ")
        previous = inst.nodes[-1].name
    return lines


def spec_text(
    model: ImportedModel,
    name: str | None = None,
    origin: str = "",
    blocks: Sequence[Block] = (),
) -> str:
    """The spec for `model`, named `name` (default: the model's own name), its `blocks`
    (xgraph.importing.blocks) written as blocks and their instances."""
    lines, classes = _header(model, name, origin)
    last = model.nodes[-1]
    if blocks:
        lines.append("blocks:")
        for block in blocks:
            lines += _block_lines(block)
    block_of = {inst.nodes[0].name: (block, inst) for block in blocks for inst in block.instances}
    inside = {n.name for block in blocks for inst in block.instances for n in inst.nodes}
    lines.append("nodes:")
    previous = None
    index = 0
    nodes = list(model.nodes)
    while index < len(nodes):
        node = nodes[index]
        if node.op == "input":
            previous = node.name if previous is None else previous
            index += 1
            continue
        if node.name in block_of:
            block, inst = block_of[node.name]
            run = [inst]
            index += len(inst.nodes)
            while index < len(nodes) and nodes[index].name in block_of:
                other_block, other = block_of[nodes[index].name]
                if other_block is not block:
                    break
                run.append(other)
                index += len(other.nodes)
            lines += _use_items(block, run, previous)
            previous = run[-1].nodes[-1].name
            continue
        assert node.name not in inside
        fields: dict[str, Any] = {"name": node.name, "op": node.op, **written_attrs(node)}
        if node is last and classes:
            fields["units"] = "${classes}"
        wanted = _inputs_field(node.inputs, previous)
        if wanted is not None:
            fields["inputs"] = wanted
        lines += _entry(fields, "  ")
        previous = node.name
        index += 1
    if len(model.outputs) > 1 or model.outputs[0] != last.name:
        lines.append(f"outputs: {scalar(list(model.outputs))}")
    return "\n".join(lines) + "\n"
