"""Finding what installed packages add to xgraph, through entry points.

Seven groups, all read with `importlib.metadata`, so a package extends xgraph without an edit
of it, and built-in and plugin contributions are registered the same way:

- `xgraph.backends`: a backend's name -> its class (imports the framework);
- `xgraph.ops`: any name -> a list of `OpDef` (framework-free); xgraph's own ops are built
  in (`xgraph.ops.BUILTIN_OPS`), so the core works even without installed metadata;
- `xgraph.op_rules`: a backend's name -> {op name: that backend's rule for the op}, from
  xgraph itself for its own backends and ops, and from plugins;
- `xgraph.weight_files`: any name -> a `WeightFileFormat` (reads and writes weight files);
- `xgraph.codegen`: a backend's name -> its code printer module (`xgraph.codegen.Printer`);
- `xgraph.trainers`: a backend's name -> its trainer factory (`xgraph.training.trainer.
  MakeTrainer`): training sits beside a backend, so building a model never imports it;
- `xgraph.importers`: a format's name -> its importer module (`xgraph.importing.model.
  ModelReader`: the suffixes it reads and `read_model`), for `xgraph import`.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from xgraph.errors import SpecError

BACKENDS = "xgraph.backends"
OPS = "xgraph.ops"
OP_RULES = "xgraph.op_rules"
WEIGHT_FILES = "xgraph.weight_files"
CODEGEN = "xgraph.codegen"
TRAINERS = "xgraph.trainers"
IMPORTERS = "xgraph.importers"


def package_of(entry: EntryPoint) -> str:
    """The distribution that declares an entry point, for reports naming who added what."""
    return entry.dist.name if entry.dist is not None else entry.value.split(":", 1)[0]


def entries(group: str) -> list[EntryPoint]:
    """A group's entry points in a stable order (by name, then package)."""
    return sorted(entry_points(group=group), key=lambda e: (e.name, package_of(e), e.value))


def load_entry(entry: EntryPoint) -> Any:
    """The object an entry point names; a package that fails to import is named in the error."""
    try:
        return entry.load()
    except Exception as exc:  # any import-time failure of someone else's package
        raise SpecError(
            f"cannot load '{entry.value}' (entry point '{entry.name}' in group '{entry.group}' "
            f"of package '{package_of(entry)}'): {type(exc).__name__}: {exc}",
            hint=f"reinstall or uninstall '{package_of(entry)}'",
        ) from exc


def loaded(group: str, name: str | None = None) -> Iterator[tuple[EntryPoint, Any]]:
    """Each entry point of `group` (only those called `name`, if given) with its object."""
    for entry in entries(group):
        if name is None or entry.name == name:
            yield entry, load_entry(entry)


def installed_backends() -> list[str]:
    """The names of the backends installed (`xgraph.backends`), without loading any."""
    return sorted({entry.name for entry in entries(BACKENDS)})
