"""An imported model as spec text a person would write: defaults left out, `inputs` only
where a node does not read the node before it, square pairs as one number, the input shape
and the classifier's width as parameters."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from xgraph import __version__
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


def spec_text(model: ImportedModel, name: str | None = None, origin: str = "") -> str:
    """The spec for `model`, named `name` (default: the model's own name)."""
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
    lines.append("nodes:")
    previous = None
    for node in model.nodes:
        if node.op == "input":
            previous = node.name if previous is None else previous
            continue
        fields: dict[str, Any] = {"name": node.name, "op": node.op, **written_attrs(node)}
        if node is last and classes:
            fields["units"] = "${classes}"
        if list(node.inputs) != ([previous] if previous else []):
            fields["inputs"] = node.inputs[0] if len(node.inputs) == 1 else list(node.inputs)
        lines += _entry(fields, "  ")
        previous = node.name
    if len(model.outputs) > 1 or model.outputs[0] != last.name:
        lines.append(f"outputs: {scalar(list(model.outputs))}")
    return "\n".join(lines) + "\n"
