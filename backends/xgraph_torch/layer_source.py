"""The source text of xgraph_torch.layers' definitions (and xgraph_torch.norm_layers',
which it imports), for generated code to embed: the classes a generated module uses are the
very ones the build instantiates, not a copy."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from xgraph_torch import layers, norm_layers


@dataclass(frozen=True)
class _Definition:
    position: int
    source: str
    uses: frozenset[str]  # the other top-level definitions of layers.py it refers to


@cache
def _definitions() -> dict[str, _Definition]:
    """Each top-level class, function and alias of norm_layers.py and layers.py, by name, in
    that order (layers.py imports norm_layers.py)."""
    named: dict[str, tuple[str, ast.stmt]] = {}
    for module in (norm_layers, layers):
        text = inspect.getsource(module)
        for statement in ast.parse(text).body:
            if isinstance(statement, ast.ClassDef | ast.FunctionDef):
                named[statement.name] = (text, statement)
            elif isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target = statement.targets[0]
                if isinstance(target, ast.Name):
                    named[target.id] = (text, statement)
    found = {}
    for position, (name, (text, statement)) in enumerate(named.items()):
        source = ast.get_source_segment(text, statement)
        assert source is not None  # a statement parsed from `text` has its position in it
        used = {node.id for node in ast.walk(statement) if isinstance(node, ast.Name)}
        found[name] = _Definition(position, source, frozenset(used & named.keys() - {name}))
    return found


def layer_names() -> tuple[str, ...]:
    """Every definition layer_source can give, in layers.py's order."""
    return tuple(_definitions())


def layer_source(class_names: Iterable[str]) -> str:
    """The source of these layers.py classes and of every definition they use (a base class,
    a padding function), each once, in the file's order, which defines a thing before its
    users; separated by two blank lines. It needs `import torch`, `from torch import nn` and
    `import torch.nn.functional as F`, nothing else."""
    definitions = _definitions()
    wanted: set[str] = set()
    pending = list(class_names)
    while pending:
        name = pending.pop()
        if name in wanted:
            continue
        if name not in definitions:
            raise KeyError(f"xgraph_torch.layers defines no '{name}'")
        wanted.add(name)
        pending.extend(definitions[name].uses)
    ordered = sorted(wanted, key=lambda name: definitions[name].position)
    return "\n\n\n".join(definitions[name].source for name in ordered) + "\n"
