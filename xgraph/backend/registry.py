"""Finding installed backends through entry points, and making one with its build options.

A backend is a package of its own registered under the `xgraph.backends` entry-point group,
so a new framework (ONNX, JAX) is added without changing the core.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from xgraph.backend.protocol import Backend
from xgraph.errors import SpecError, did_you_mean
from xgraph.plugins import BACKENDS, entries, installed_backends, load_entry


def available_backends() -> list[str]:
    return installed_backends()


def load_backend(name: str, options: Mapping[str, str] | None = None) -> Backend:
    """Import the named backend (this is where torch or tensorflow gets imported), made
    with the build `options` it declares."""
    found = {entry.name: entry for entry in entries(BACKENDS)}
    if name not in found:
        known = ", ".join(sorted(found)) or "none installed"
        raise SpecError(
            f"unknown backend '{name}' (backends: {known})", hint=did_you_mean(name, found)
        )
    backend_class = load_entry(found[name])
    declared: Mapping[str, tuple[str, ...]] = getattr(backend_class, "options", {})
    for option, value in (options or {}).items():
        if option not in declared:
            offered = ", ".join(sorted(declared)) or "none"
            raise SpecError(
                f"the {name} backend has no option '{option}' (its options: {offered})",
                hint=did_you_mean(option, declared),
            )
        if value not in declared[option]:
            raise SpecError(
                f"the {name} backend's option {option} is one of "
                f"{', '.join(declared[option])}, not '{value}'",
                hint=did_you_mean(value, declared[option]),
            )
    return backend_class(**(options or {}))


def parse_options(pairs: Sequence[str]) -> dict[str, str]:
    """`NAME=VALUE` strings (from `--option`) as a dict; a name given twice is an error."""
    options: dict[str, str] = {}
    for pair in pairs:
        option, equals, value = pair.partition("=")
        if not equals or not option.strip() or not value.strip():
            raise SpecError(f"--option takes NAME=VALUE, not '{pair}'")
        if option.strip() in options:
            raise SpecError(f"--option {option.strip()} is given twice")
        options[option.strip()] = value.strip()
    return options
