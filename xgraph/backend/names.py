"""Names every installed backend can use, checked when a spec is compiled, so that `validate`
refuses a name a build would fail on, at the node that has it.

Each framework has names of its own: torch registers every node's layer as an attribute of
an `nn.Module`, so `training` or `forward` cannot be node names; Keras (through TensorFlow's
name scopes) takes only some characters in model names. A backend states its rules in a
framework-free module `names` of its package (`xgraph_torch.names`), with a function
`check_names(analysed, name_location)` that raises a located `SpecError`; a backend without
one has no rules of its own. The rules are read without importing any framework.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points

from xgraph.errors import Location, SpecError
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.plugins import BACKENDS

NAMES_MODULE = "names"  # `<backend package>.names`, beside the backend's rules

NameCheck = Callable[[AnalysedGraph, Location | None], None]


@cache
def backend_name_checks() -> tuple[tuple[str, NameCheck], ...]:
    """(backend, its `check_names`) for each installed backend that states name rules."""
    checks: list[tuple[str, NameCheck]] = []
    # Sorted by name only: `xgraph.plugins.entries` also reads every package's metadata.
    for entry in sorted(entry_points(group=BACKENDS), key=lambda e: (e.name, e.value)):
        package = entry.value.split(":", 1)[0].split(".", 1)[0]
        module_name = f"{package}.{NAMES_MODULE}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name not in (module_name, package):  # a broken package is no rule to skip
                raise
            continue
        checks.append((entry.name, module.check_names))
    return tuple(checks)


def check_backend_names(analysed: AnalysedGraph, name_location: Location | None = None) -> None:
    """Refuse, at the first place that has one, a node or model name some installed backend
    cannot use; `name_location` is where the spec's `name` was written."""
    for _, check in backend_name_checks():
        check(analysed, name_location)


def node_name_error(node: Node, backend: str, why: str, hint: str | None = None) -> SpecError:
    """The one wording of a node name a backend refuses."""
    kind = "input" if node.op == "input" else "node"
    return SpecError(
        f"{kind} name '{node.name}' cannot be used with the {backend} backend: {why}",
        node.location,
        hint=hint or f"rename it, for example to '{node.name}_{node.op}'",
    )


def model_name_error(
    name: str, location: Location | None, backend: str, why: str, hint: str | None = None
) -> SpecError:
    return SpecError(
        f"model name {name!r} cannot be used with the {backend} backend: {why}",
        location,
        hint=hint,
    )
