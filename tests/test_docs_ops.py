"""docs/spec.md's op reference checked against the op registry, both ways: every built-in op
listed and given a section, each section's attribute table naming exactly the op's
attributes with its defaults, its parameters named, and nothing documented that xgraph lacks.

The types and bounds stay prose written for readers; the facts a reader relies on come from
the `OpDef`s (xgraph/ops/), so an op edit that the reference does not follow fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from xgraph.ops import BUILTIN_OPS, OpDef

SPEC_DOC = Path(__file__).resolve().parent.parent / "docs" / "spec.md"
OPS = {op.name: op for op in BUILTIN_OPS}
FIX = (
    "edit the op reference in docs/spec.md to match (`xgraph ops` lists the ops; their OpDefs "
    "are in xgraph/ops/)"
)


def _reference() -> str:
    text = SPEC_DOC.read_text()
    return text.split("\n## Op reference\n", 1)[1].split("\n## ", 1)[0]


def _summary_rows() -> dict[str, str]:
    """The summary table's ops and their `inputs` cell."""
    rows = re.findall(r"^\| \[`(\w+)`\]\(#[\w-]+\) \| .*? \| (.*?) \|$", _reference(), re.M)
    return dict(rows)


def _sections() -> dict[str, str]:
    """Each op's section, by op name (a section may document two ops)."""
    found: dict[str, str] = {}
    for part in re.split(r"^### ", _reference(), flags=re.M)[1:]:
        heading, _, body = part.partition("\n")
        for name in re.findall(r"`(\w+)`", heading):
            found[name] = body
    return found


def _attribute_rows(section: str) -> dict[str, str]:
    """The attribute table of a section: attribute -> its default cell."""
    return dict(re.findall(r"^\| `(\w+)` \| .*? \| (.*?) \| .*?\|$", section, re.M))


def _inputs_cell(op: OpDef) -> str:
    if op.max_inputs is None:
        return f"{op.min_inputs} or more"
    return str(op.min_inputs) if op.min_inputs == op.max_inputs else "?"


def _documented_default(op: OpDef, attribute: str, cell: str) -> Any:
    """The value the doc's default gives once the op's attribute model reads it, as a spec's
    value would be read (`1` is the pair (1, 1), `null` is None)."""
    written = re.match(r"`([^`]*)`", cell)
    assert written, f"op '{op.name}': the default of `{attribute}` is not `quoted`: {cell!r}"
    value = yaml.safe_load(written.group(1))
    required = next(
        (e.attrs for e in op.examples if all(k in e.attrs for k in _required(op))), None
    )
    assert required is not None, f"op '{op.name}' has no example giving its required attributes"
    return getattr(op.attrs.model_validate({**required, attribute: value}), attribute)


def _required(op: OpDef) -> list[str]:
    return [name for name, field in op.attrs.model_fields.items() if field.is_required()]


def test_the_summary_table_lists_every_built_in_op_once() -> None:
    rows = _summary_rows()
    assert sorted(rows) == sorted(OPS), (
        f"docs/spec.md's op table lists {sorted(set(rows) - set(OPS))} that xgraph lacks and "
        f"misses {sorted(set(OPS) - set(rows))}: {FIX}"
    )
    wrong = {
        name: (cell, _inputs_cell(OPS[name]))
        for name, cell in rows.items()
        if name != "input" and cell != _inputs_cell(OPS[name])
    }
    assert not wrong, f"the 'inputs' column differs (doc, registry): {wrong}: {FIX}"


@pytest.mark.parametrize("name", sorted(OPS))
def test_each_op_section_documents_its_attributes_and_defaults(name: str) -> None:
    op = OPS[name]
    sections = _sections()
    assert name in sections, f"op '{name}' has no '### `{name}`' section: {FIX}"
    rows = _attribute_rows(sections[name])
    fields = op.attrs.model_fields
    if not fields:
        assert not rows and "No attributes" in sections[name], (
            f"op '{name}' has no attributes: say 'No attributes.' and show no table: {FIX}"
        )
        return
    expected = [f"| `{a}` | ... | {_default_cell(op, a)} | ... |" for a in fields]
    assert sorted(rows) == sorted(fields), (
        f"op '{name}': the attribute table lists {sorted(rows)}, the op has {sorted(fields)}; "
        f"{FIX}. Rows the op's attributes call for:\n" + "\n".join(expected)
    )
    for attribute, cell in rows.items():
        field = fields[attribute]
        if field.is_required():
            assert cell.startswith("required"), f"op '{name}': `{attribute}` is required: {FIX}"
            continue
        assert _documented_default(op, attribute, cell) == field.default, (
            f"op '{name}': `{attribute}` defaults to {field.default!r}, the doc says {cell!r}: "
            f"{FIX}"
        )


def _default_cell(op: OpDef, attribute: str) -> str:
    field = op.attrs.model_fields[attribute]
    if field.is_required():
        return "required"
    default = field.default
    shown = default if isinstance(default, str) else json.dumps(default)
    return f"`{shown}`"


@pytest.mark.parametrize("name", sorted(OPS))
def test_each_op_section_names_its_parameters(name: str) -> None:
    op = OPS[name]
    section = _sections().get(name, "")
    params = {
        spec.name
        for example in op.examples
        if all(k in example.attrs for k in _required(op))
        for spec in op.params(op.attrs.model_validate(example.attrs), example.inputs)
    }
    missing = sorted(p for p in params if f"`{p}`" not in section)
    assert not missing, f"op '{name}': parameters {missing} are not named in its section: {FIX}"


def test_nothing_is_documented_that_xgraph_lacks() -> None:
    extra = sorted(set(_sections()) - set(OPS))
    assert not extra, f"docs/spec.md documents ops {extra} that xgraph does not define: {FIX}"
