"""Variants by extension: a spec that says `extends: base.yaml` and then what differs.

The extending file is merged into its base (itself resolved first) before anything else
reads it, giving one plain spec document and one source map. This module reads and checks
the chain of files (what an extending file may say, where its base is, cycles, depth); the
merge rules themselves are xgraph.spec.merge's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from xgraph.budgets import Budgets, active_budgets
from xgraph.errors import Location, SpecError
from xgraph.spec.diagnostics import spec_error_from_validation
from xgraph.spec.merge import merge_extension
from xgraph.spec.model import Spec, Strict
from xgraph.spec.source import Source, read_yaml_file

Items = Annotated[list[Any], Field(min_length=1)]


class Insertion(Strict):
    """New items placed right after (or before) a named item of the inherited list."""

    after: str | None = None
    before: str | None = None
    nodes: Items

    @model_validator(mode="after")
    def _one_anchor(self) -> Insertion:
        if (self.after is None) == (self.before is None):
            raise ValueError("an insertion needs exactly one of 'after' and 'before'")
        return self


class NodeEdits(Strict):
    """Edits of an inherited list of nodes and `use` items, naming items as written."""

    override: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Keys set on a named item; a `use` item's args merge."
    )
    remove: list[str] = Field(default_factory=list, description="Items to leave out.")
    replace: dict[str, Items] = Field(
        default_factory=dict, description="A named item replaced by these items, in place."
    )
    insert: list[Insertion] = Field(default_factory=list)


class BlockExtension(NodeEdits):
    """A block of an extending spec: with `nodes`, a whole new block; else edits."""

    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    nodes: Items | None = None
    doc: str | None = None


class Extension(NodeEdits):
    """The top level of an extending spec."""

    xgraph: Literal[1]
    extends: str = Field(description="The base spec: a path relative to this file.")
    name: str | None = None
    description: str | None = None
    initializer: str | None = None
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    inputs: Items | None = None
    blocks: dict[str, BlockExtension] = Field(default_factory=dict)
    defaults: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Merged into the base's, op by op, attribute by attribute.",
    )
    nodes: Items | None = None
    outputs: Items | None = None
    training: dict[str, Any] | None = None
    search: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Link:
    """One `extends`: the file that says it, the file it names, and where it says so."""

    file: Path  # resolved, for cycles
    shown: str
    base: Path
    base_shown: str
    location: Location


def is_extension(data: Any) -> bool:
    return isinstance(data, dict) and "extends" in data


def resolve_extends(source: Source, budgets: Budgets | None = None) -> Source:
    """`source` with its `extends` chain merged in; a spec without one is returned as is."""
    budgets = active_budgets(budgets)
    return _resolve(source, (), budgets)


def _resolve(source: Source, links: tuple[_Link, ...], budgets: Budgets) -> Source:
    if not is_extension(source.data):
        return source
    extension = _validate(source, Extension)
    where = source.where
    location = where.value(("extends",))
    written = extension.extends
    if "://" in written:
        raise SpecError(
            f"'extends' names a local file, not a URL: '{written[:80]}'",
            location,
            hint="download the base spec and extend the local copy",
        )
    # The file this spec was read from: as given for the first, else the real path of the
    # base read last, so that `..` means what it means to the OS behind a symlinked folder.
    this = links[-1].base if links else Path(where.file)
    base = this.parent / written
    shown = written if len(written) <= 80 else written[:77] + "..."
    try:
        link = _Link(
            this.resolve(),
            os.path.normpath(where.file),
            base.resolve(),
            os.path.normpath(base),
            location,
        )
        reason = None if base.is_file() else "it is not a file" if base.exists() else "no such file"
    except (OSError, ValueError) as exc:  # a name too long for the OS, or with a NUL
        raise SpecError(
            f"cannot read '{shown}', which this spec extends: {getattr(exc, 'strerror', exc)}",
            location,
        ) from None
    links = (*links, link)
    for index, earlier in enumerate(links):
        if earlier.file == link.base:
            cycle = links[index:]
            chain = " -> ".join([*(step.shown for step in cycle), cycle[0].shown])
            notes = [
                f"'{step.shown}' extends '{step.base_shown}' at {step.location}"
                for step in cycle[1:]
            ]
            raise SpecError(f"'extends' makes a cycle: {chain}", earlier.location, notes=notes)
    if len(links) > budgets.extends_depth:
        raise budgets.exceeded(
            "extends_depth",
            f"the chain of 'extends' from here is more than {budgets.extends_depth} files long",
            links[0].location,
            notes=["or extend a file nearer the end of the chain, or merge files of the chain"],
        )
    if reason is not None:
        raise SpecError(
            f"cannot read '{shown}', which this spec extends: {reason}",
            location,
            hint="'extends' is a path relative to the folder of the file that holds it",
        )
    parent = _resolve(read_yaml_file(base, link.base_shown, budgets), links, budgets)
    _validate(parent, Spec)
    return merge_extension(parent, source)


def _validate(source: Source, model: type[Strict]) -> Any:
    data = source.data
    if model is Extension and "xgraph" in data and data["xgraph"] != 1:
        raise SpecError(
            f"unsupported spec version {data['xgraph']!r}: this xgraph reads version 1",
            source.where.value(("xgraph",)),
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise spec_error_from_validation(exc, source.where, model, data) from None


def load_yaml(path: str | Path, budgets: Budgets | None = None) -> Source:
    """Read and parse a spec file, with the specs it `extends` merged in."""
    budgets = active_budgets(budgets)
    source = read_yaml_file(path, budgets=budgets)
    if isinstance(source.data, dict) and "extends" in source.data:
        return resolve_extends(source, budgets)
    return source
