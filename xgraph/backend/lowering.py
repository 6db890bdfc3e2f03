"""What a backend's lowering returns: a description of a layer to make, not a live object.

The builder instantiates it and the code generator prints it, so the built model and the
generated code cannot drift apart, and tests can compare lowerings without building anything.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LayerCall:
    """`module.cls(**kwargs)`: for instance `torch.nn.Conv2d(in_channels=3, ...)`."""

    module: str
    cls: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def instantiate(self) -> Any:
        """The live object: `module.cls(**kwargs)`, importing the module (this is where a
        framework, or a plugin's own layers, get imported)."""
        return getattr(importlib.import_module(self.module), self.cls)(**self.kwargs)

    def __str__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.kwargs.items())
        return f"{self.module}.{self.cls}({args})"
