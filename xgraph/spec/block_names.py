"""Which block definition made a node: for an `override` that names a node that only exists
after expansion (`block5_sepconv1`, made by `use: middle_block` through a `repeat`)."""

from __future__ import annotations

import re
from typing import Any

_EXPRESSION = re.compile(r"\$\{[^}]*\}")
_NAME = re.compile(r"\$\{\s*name\s*\}")


def _pattern(template: str, bind_name: bool) -> re.Pattern[str]:
    """A node name as written (`${name}_sepconv1`) as a pattern over the names it makes."""
    parts = []
    for index, piece in enumerate(re.split(r"(\$\{[^}]*\})", template)):
        if index % 2 == 0:
            parts.append(re.escape(piece))
        elif bind_name and _NAME.fullmatch(piece) and "(?P<instance>" not in "".join(parts):
            parts.append(r"(?P<instance>\w+?)")
        else:
            parts.append(r"\w+?")
    return re.compile("".join(parts))


def block_origin(name: str, items: list[Any], blocks: dict[str, Any]) -> str | None:
    """A hint saying which block to edit when `name` is a node made by one of the block
    instances among `items`, or None."""
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        use = item.get("use")
        block = blocks.get(use) if isinstance(use, str) else None
        if not isinstance(block, dict):
            continue
        instance_pattern = _pattern(item["name"], bind_name=False)
        for node in block.get("nodes") or []:
            written = node.get("name") if isinstance(node, dict) else None
            if not isinstance(written, str) or not _NAME.search(written):
                continue
            found = _pattern(written, bind_name=True).fullmatch(name)
            if found and instance_pattern.fullmatch(found["instance"]):
                return (
                    f"'{name}' is made by block '{use}' (instance '{found['instance']}'): edit "
                    f"it under blocks: {use}: override: '{written}', which changes it in "
                    "every instance"
                )
    return None
