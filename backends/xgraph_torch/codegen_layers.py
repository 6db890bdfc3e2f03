"""How one node prints in generated torch code: the module `__init__` makes for it (if it
has one) and the expression `forward` computes with it.

The plainest torch that computes what the build computes: torch.nn's own classes where
they suffice (`nn.Conv2d` where no asymmetric padding is needed), activations and
parameter-free steps (add, global pooling, flatten) as functions in `forward`, and
xgraph_torch.layers' classes, the build's very own, where torch lacks one (their source is
copied into the module: `xgraph_torch.layer_source`). Plugins' torch modules are copied too
when they need nothing but torch and the standard library.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
from typing import Any

from torch import nn

from xgraph.backend.lowering import LayerCall
from xgraph.codegen import Arg, Code, LayerStep, arguments
from xgraph.errors import SpecError
from xgraph.ir.graph import Node
from xgraph_torch import layers
from xgraph_torch.rules.activation import ACTIVATION_LAYERS
from xgraph_torch.rules.base import LAYERS, NN

# Activations as functions: the function and its arguments after the input (None: x), each
# written where the layer has the keyword it names.
FUNCTIONAL: dict[str, tuple[str, tuple[str, ...]] | None] = {
    "Identity": None,
    "ReLU": ("F.relu", ()),
    "ReLU6": ("F.relu6", ()),
    "Sigmoid": ("torch.sigmoid", ()),
    "Hardsigmoid": ("F.hardsigmoid", ()),
    "Tanh": ("torch.tanh", ()),
    "Softmax": ("torch.softmax", ("dim={dim}",)),
    "SiLU": ("F.silu", ()),
    "Hardswish": ("F.hardswish", ()),
    "GELU": ("F.gelu", ("approximate={approximate!r}",)),
}
NO_MODULE = {"GlobalPool", "FlattenChannelsLast", "Add", "Concat", "ScaledAdd", "Cropping2d"}
NO_PAD = (0, 0, 0, 0)
PADDED = {
    "Conv2d",
    "DepthwiseConv2d",
    "SeparableConv2d",
    "MaxPool2d",
    "AvgPool2d",
}  # layers that take `pad`


def _applied(cls: str, x: Arg, kwargs: dict[str, Any]) -> Arg:
    """Activation `cls` applied to `x`, as a call the printer formats."""
    function = FUNCTIONAL[cls]
    if function is None:
        return x
    head, extra = function
    given = [arg for arg in extra if arg.split("=", 1)[0] in kwargs]
    return (head, [x, *(arg.format(**kwargs) for arg in given)])


def _crop(before: Any, after: Any) -> str:
    """The slice that cuts `before` and `after` items off an axis: `1:-2`, `1:`, `:`."""
    return f"{before or ''}:{f'-{after}' if after else ''}"


def _padded(pad: Any) -> bool:
    return isinstance(pad, Code | str) or any(pad)


def plugin_class(call: LayerCall, node: Node) -> str:
    """A plugin's own torch module, copied into the generated code when its module needs
    nothing but torch and the standard library."""
    module = importlib.import_module(call.module)
    text = inspect.getsource(module)
    tree = ast.parse(text)
    for statement in tree.body:
        if isinstance(statement, ast.Import | ast.ImportFrom):
            names = [a.name for a in statement.names] if isinstance(statement, ast.Import) else []
            base = statement.module if isinstance(statement, ast.ImportFrom) else None
            for full in [*names, base] if base else names:
                top = (full or "").split(".")[0]
                if top not in ("torch", "__future__") and top not in sys.stdlib_module_names:
                    raise SpecError(
                        f"op '{node.op}' (node '{node.name}') has no code generation for the "
                        f"torch backend: its layer {call.module}.{call.cls} needs '{full}'",
                        node.location,
                    )
    for statement in tree.body:
        if isinstance(statement, ast.ClassDef) and statement.name == call.cls:
            statement.decorator_list = []
            return ast.get_source_segment(text, statement) or ""
    raise SpecError(
        f"op '{node.op}' (node '{node.name}') has no code generation for the torch backend: "
        f"class {call.cls} not found in {call.module}",
        node.location,
    )


class LayerPrinter:
    """Prints layers, and remembers the layers.py classes and plugin classes they use."""

    def __init__(self) -> None:
        self.layers: set[str] = set()
        self.plugins: dict[str, str] = {}

    def module(self, step: LayerStep, call: LayerCall) -> tuple[str, list[str]] | None:
        """The class expression and arguments that make the node's module, if it has one."""
        kwargs = {k: v for k, v in call.kwargs.items() if k != "activation"}
        if call.module == NN:
            if step.node.op == "activation" and call.cls in FUNCTIONAL:
                return None
            return f"nn.{call.cls}", arguments(getattr(nn, call.cls), kwargs)
        if call.module != LAYERS:
            self.plugins.setdefault(call.cls, plugin_class(call, step.node))
            cls = getattr(importlib.import_module(call.module), call.cls)
            return call.cls, arguments(cls, kwargs)
        if call.cls in NO_MODULE:
            return None
        pad = kwargs.pop("pad", NO_PAD)
        if call.cls in ("Conv2d", "MaxPool2d") and not _padded(pad):
            return f"nn.{call.cls}", arguments(getattr(nn, call.cls), kwargs)
        if call.cls == "AvgPool2d" and not _padded(pad):
            return "nn.AvgPool2d", arguments(nn.AvgPool2d, kwargs)
        if call.cls == "Linear":
            return "nn.Linear", arguments(nn.Linear, kwargs)
        self.layers.add(call.cls)
        if call.cls in PADDED:
            kwargs["pad"] = pad
        return call.cls, arguments(getattr(layers, call.cls), kwargs)

    def forward(self, step: LayerStep, call: LayerCall, attribute: str) -> Arg:
        """The expression that runs the node on its input variables (text, or a call for
        the printer to format); `attribute` is the expression of its module."""
        x = step.inputs[0] if step.inputs else ""
        kwargs = call.kwargs
        if call.module == NN and step.node.op == "activation" and call.cls in FUNCTIONAL:
            return _applied(call.cls, x, call.kwargs)
        if call.module == LAYERS and call.cls in NO_MODULE:
            if call.cls == "Add":
                return " + ".join(step.inputs)
            if call.cls == "Concat":
                return (
                    "torch.cat",
                    [f"[{', '.join(step.inputs)}]", f"dim={kwargs['dim']}"],
                )
            if call.cls == "FlattenChannelsLast":
                return f"{x}.movedim(1, -1).flatten(1)"
            if call.cls == "ScaledAdd":
                return f"{step.inputs[0]} + {step.inputs[1]} * {kwargs['scale']!r}"
            if call.cls == "Cropping2d":
                rows, columns = (_crop(*amounts) for amounts in kwargs["cropping"])
                return f"{x}[:, :, {rows}, {columns}]"
            reduce = "mean" if kwargs["mode"] == "avg" else "amax"
            keep = ", keepdim=True" if kwargs["keepdims"] else ""
            return f"{x}.{reduce}((2, 3){keep})"
        text: Arg
        if call.cls == "Linear" and step.input_ranks and step.input_ranks[0] > 1:
            text = f"{attribute}({x}.movedim(1, -1)).movedim(-1, 1)"
        else:
            text = (attribute, list(step.inputs))
        activation = kwargs.get("activation", "linear")
        if activation not in ("linear", None):
            fused = ACTIVATION_LAYERS[activation]
            text = _applied(fused.cls, text, fused.kwargs)
        return text
