"""The torch model: one submodule per graph node, run in the graph's topological order, each
made from its lowering (`make_layer`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from xgraph.backend.lowering import LayerCall
from xgraph.errors import SpecError
from xgraph.ir.analysis import AnalysedGraph
from xgraph_torch.names import reserved_reason
from xgraph_torch.rules.activation import ACTIVATION_LAYERS
from xgraph_torch.rules.base import LAYERS

# Fused activations that may overwrite their input: the layer's output is a fresh tensor
# nobody else holds, and ReLU's gradient needs only its result (activations whose gradient
# needs their input, such as SiLU, must not overwrite it).
IN_PLACE = frozenset({"relu"})


def activation_module(name: str) -> nn.Module:
    """A fused activation, from the same table as the `activation` op's lowering, applied in
    place where that is safe (one tensor fewer per layer)."""
    module = ACTIVATION_LAYERS[name].instantiate()
    if name in IN_PLACE:
        module.inplace = True
    return module


def make_layer(call: LayerCall) -> nn.Module:
    """The live module of a lowering. A lowering names the fused activation of xgraph's layers
    (`activation="relu"`, which prints and compares as text); the layers take a module, which
    keeps them free of xgraph's activation table, so they stand alone in generated code."""
    activation = call.kwargs.get("activation")
    if call.module == LAYERS and isinstance(activation, str):
        kwargs = {**call.kwargs, "activation": activation_module(activation)}
        call = LayerCall(call.module, call.cls, kwargs)
    return call.instantiate()


class GraphModule(nn.Module):
    """Runs each node's submodule on its inputs' values, freeing a value after its last use.

    Takes NCHW tensors (PyTorch's convention) in the order of the graph's inputs; returns one
    tensor, or a tuple when the graph has several outputs. Images are laid out channels_last
    in memory on the way in, which is what makes CPU convolutions fast; shapes stay NCHW.
    """

    def __init__(
        self,
        modules: dict[str, nn.Module],
        steps: Sequence[tuple[str, tuple[str, ...]]],
        inputs: Sequence[str],
        outputs: Sequence[str],
    ) -> None:
        super().__init__()
        for name, module in modules.items():
            # validate refuses these first (xgraph_torch.names); this guards direct callers.
            if (reason := reserved_reason(name)) is not None:
                raise SpecError(f"node name '{name}' cannot name a torch layer: {reason}")
            self.add_module(name, module)
        self.steps = tuple(steps)
        self.input_names = tuple(inputs)
        self.output_names = tuple(outputs)
        self.channels_last = True
        last_use: dict[str, int] = {}
        for index, (_, sources) in enumerate(self.steps):
            for source in sources:
                last_use[source] = index
        keep = set(self.output_names)
        self._release = tuple(
            tuple(s for s in dict.fromkeys(sources) if last_use[s] == index and s not in keep)
            for index, (_, sources) in enumerate(self.steps)
        )

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        values = {
            name: x.contiguous(memory_format=torch.channels_last)
            if self.channels_last and x.dim() == 4
            else x
            for name, x in zip(self.input_names, inputs, strict=True)
        }
        for (name, sources), release in zip(self.steps, self._release, strict=True):
            module = self._modules[name]
            assert module is not None  # every step's module was added in __init__
            values[name] = module(*(values[s] for s in sources))
            for source in release:
                del values[source]
        if len(self.output_names) == 1:
            return values[self.output_names[0]]
        return tuple(values[name] for name in self.output_names)


def build_module(analysed: AnalysedGraph, lower) -> GraphModule:
    """Instantiate every node's lowering and wire them in topological order."""
    modules: dict[str, nn.Module] = {}
    steps = []
    for node in analysed.graph.nodes:
        call = lower(analysed, node)
        if call is None:
            continue
        modules[node.name] = make_layer(call)
        steps.append((node.name, node.inputs))
    return GraphModule(modules, steps, analysed.graph.inputs, analysed.graph.outputs)
