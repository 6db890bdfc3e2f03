"""The search checked against the spec before any trial runs: each name a parameter of the
spec or a `training.*` setting, and every value the search may try one the spec takes (each
choice, each bound of a range), by compiling the spec with it; an error is located at the
search's entry, with the spec's own refusal as a note."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xgraph.api import load
from xgraph.errors import FileError, SpecError, did_you_mean
from xgraph.ir.analysis import AnalysedGraph
from xgraph.training.search import SearchSpace, set_text


def search_of(analysed: AnalysedGraph, spec: str | Path) -> SearchSpace:
    space = analysed.sections.get("search")
    if not isinstance(space, SearchSpace):
        raise FileError(
            spec,
            "the spec has no 'search:' section: nothing to tune",
            hint="add one, or write a file that extends the spec with it (docs/tuning.md)",
        )
    return space


def check_search(
    spec: str | Path, overrides: Sequence[str], analysed: AnalysedGraph, space: SearchSpace
) -> None:
    """Raise a located SpecError for the first entry the spec cannot take."""
    given = {text.partition("=")[0].strip() for text in overrides}
    for name, dimension in space.dimensions.items():
        where = space.locations[name]
        if not name.startswith("training.") and name not in analysed.params:
            raise SpecError(
                f"search: '{name}' is not a parameter of '{analysed.name}' (its parameters: "
                f"{', '.join(analysed.params) or 'none'})",
                where,
                hint=did_you_mean(name, analysed.params),
            )
        if name in given:
            raise SpecError(
                f"search: '{name}' is searched and also set by --set",
                where,
                hint=f"leave out --set {name}=..., or the search's entry",
            )
        for value in dimension.edge_values():
            try:
                load(spec, [*overrides, set_text(name, value)])
            except SpecError as exc:
                raise SpecError(
                    f"search: '{name}' may try {value!r}, which the spec refuses",
                    where,
                    notes=[exc.format()],
                ) from None
