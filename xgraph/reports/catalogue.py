"""The op catalogue: every registered op with its attributes, where it comes from and the
backends that lower it (`xgraph ops`). Reads op definitions and rule tables only, so it
imports no framework."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from xgraph.backend.rules import backends_for
from xgraph.ops import REGISTRY, OpDef


def _attributes(opdef: OpDef) -> list[dict[str, Any]]:
    """Required attributes first, then the others with their defaults, as declared."""
    attributes = []
    for name, field in opdef.attrs.model_fields.items():
        entry: dict[str, Any] = {"name": name, "required": field.is_required()}
        if not field.is_required():
            default = field.get_default(call_default_factory=True)
            entry["default"] = json.loads(json.dumps(default, default=repr))  # tuples as lists
        attributes.append(entry)
    return sorted(attributes, key=lambda entry: not entry["required"])


def op_entry(opdef: OpDef) -> dict[str, Any]:
    return {
        "name": opdef.name,
        "summary": opdef.summary,
        "origin": opdef.origin,
        "backends": backends_for(opdef.name),
        "inputs": {"min": opdef.min_inputs, "max": opdef.max_inputs},
        "attributes": _attributes(opdef),
    }


def catalogue() -> list[dict[str, Any]]:
    """Every registered op, by name."""
    return [op_entry(REGISTRY[name]) for name in sorted(REGISTRY)]


def _attribute_text(attribute: dict[str, Any]) -> str:
    if attribute["required"] or "default" not in attribute:
        return f"{attribute['name']} (required)"
    return f"{attribute['name']}={json.dumps(attribute['default'])}"


def catalogue_text(entries: list[dict[str, Any]]) -> str:
    """One paragraph per op: name, origin and backends, what it does, its attributes."""
    paragraphs = []
    for entry in entries:
        backends = ", ".join(entry["backends"]) or "none installed"
        lines = [
            f"{entry['name']}  ({entry['origin']}; backends: {backends})",
            f"  {entry['summary']}",
        ]
        if entry["attributes"]:
            text = ", ".join(_attribute_text(a) for a in entry["attributes"])
            lines += textwrap.wrap(
                text, width=96, initial_indent="  attributes: ", subsequent_indent="    "
            )
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)
