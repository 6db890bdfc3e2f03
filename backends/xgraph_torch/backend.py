"""TorchBackend: build, weights, counts, inference and saving for torch models."""

from __future__ import annotations

import copy
import functools
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from xgraph.backend.lowering import LayerCall
from xgraph.backend.rules import placed_weights, require_rules
from xgraph.errors import SpecError
from xgraph.files import save_atomically
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.weights.initial import Weights, initial_weights
from xgraph.weights.slots import PlacedWeight
from xgraph_torch.module import GraphModule, build_module
from xgraph_torch.rules import TorchRule
from xgraph_torch.rules.base import torch_rules


def to_channels_first(array: np.ndarray) -> np.ndarray:
    return np.moveaxis(array, -1, 1) if array.ndim > 2 else array


def to_channels_last(array: np.ndarray) -> np.ndarray:
    return np.moveaxis(array, 1, -1) if array.ndim > 2 else array


def _laid_out(model: GraphModule, memory_format: torch.memory_format) -> GraphModule:
    """The model (itself, changed in place) with its parameters and buffers in `memory_format`."""
    # torch's overloads of Module.to leave out memory_format, which it takes (documented).
    return model.to(memory_format=memory_format)  # type: ignore[call-overload]


class TorchBackend:
    name = "torch"
    file_suffix = ".pt2"
    # compile=aoti saves an AOTInductor package (torch._inductor.aoti_load_package reads it)
    # instead of an exported program: the convolutions compiled ahead of time with their
    # weights prepacked, which is faster on CPU (benchmarks/) and takes a C++ compiler and
    # about a minute for Xception to build.
    options: Mapping[str, tuple[str, ...]] = {"compile": ("no", "aoti")}
    layout = "nchw tensors, channels_last memory inside"

    def __init__(self, compile: str = "no") -> None:
        self.compile = compile
        self.rules: Mapping[str, TorchRule] = torch_rules()

    def lower(self, analysed: AnalysedGraph, node: Node) -> LayerCall | None:
        return self.rules[node.op].lower(analysed, node)

    def placed_weights(self, analysed: AnalysedGraph, node: Node) -> list[PlacedWeight]:
        """Each parameter of the node with its slot, in the op's order: the slot's key is
        its attribute path in the node's module (`depthwise.weight`)."""
        return placed_weights(analysed, node, self.name)

    def build(self, analysed: AnalysedGraph, weights: Weights | None = None) -> GraphModule:
        require_rules(analysed, self.name)
        model = build_module(analysed, self.lower)
        self.set_weights(
            model, analysed, weights if weights is not None else initial_weights(analysed)
        )
        # Convolutions run about twice as fast channels_last on CPU (benchmarks/): only the
        # memory strides change, not the parameters' values, names or shapes.
        return _laid_out(model, torch.channels_last).eval()

    def _tensor(self, model: GraphModule, node: str, attribute: str) -> torch.Tensor:
        """A node's parameter or buffer by its dotted path (`depthwise.weight`)."""
        module: object = model.get_submodule(node)
        tensor = functools.reduce(getattr, attribute.split("."), module)
        assert isinstance(tensor, torch.Tensor)  # the slots name parameters and buffers
        return tensor

    def set_weights(self, model: GraphModule, analysed: AnalysedGraph, weights: Weights) -> None:
        with torch.no_grad():
            for node in analysed.graph.nodes:
                for placed in self.placed_weights(analysed, node):
                    value = placed.to_framework(np.asarray(weights[placed.key]))
                    target = self._tensor(model, node.name, placed.framework_key)
                    target.copy_(torch.from_numpy(np.array(value, order="C")))

    def get_weights(self, model: GraphModule, analysed: AnalysedGraph) -> Weights:
        weights = {}
        for node in analysed.graph.nodes:
            for placed in self.placed_weights(analysed, node):
                tensor = self._tensor(model, node.name, placed.framework_key)
                value = placed.from_framework(tensor.detach().cpu().numpy())
                weights[placed.key] = np.array(value, order="C")  # a copy
        return weights

    def node_param_counts(
        self, model: GraphModule, analysed: AnalysedGraph
    ) -> dict[str, tuple[int, int]]:
        """Parameters are trainable; floating-point buffers (BatchNorm's running statistics)
        are the non-trainable weights. Integer counters are not weights."""
        counts = {}
        for node in analysed.graph.nodes:
            if node.name not in model._modules:
                counts[node.name] = (0, 0)
                continue
            module = model.get_submodule(node.name)
            trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
            statistics = sum(b.numel() for b in module.buffers() if b.is_floating_point())
            counts[node.name] = (trainable, statistics)
        return counts

    def predict(self, model: nn.Module, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        tensors = [torch.from_numpy(np.ascontiguousarray(to_channels_first(x))) for x in inputs]
        with torch.inference_mode():
            outputs = model(*tensors)
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        return [to_channels_last(o.numpy()) for o in outputs]

    def example_inputs(self, analysed: AnalysedGraph, batch: int = 2) -> tuple[torch.Tensor, ...]:
        return tuple(
            torch.zeros(batch, *((shape[-1], *shape[:-1]) if len(shape) > 1 else shape))
            for shape in analysed.input_shapes()
        )

    def export(self, model: GraphModule, analysed: AnalysedGraph) -> torch.export.ExportedProgram:
        """A torch.export program with a dynamic batch dimension on every input.

        It is exported from a copy with contiguous parameters: torch.export.load warns about
        channels_last ones, and the program lays its inputs out channels_last anyway."""
        batch = torch.export.Dim("batch", min=1, max=65536)
        example = self.example_inputs(analysed)
        dynamic = {"inputs": tuple({0: batch} for _ in example)}
        contiguous = _laid_out(copy.deepcopy(model), torch.contiguous_format).eval()
        return torch.export.export(contiguous, example, dynamic_shapes=dynamic)

    def load(self, path: Path) -> nn.Module:
        """A .pt2 exported program as `predict` takes it (`xgraph predict`)."""
        return torch.export.load(str(path)).module()

    def save(self, model: GraphModule, analysed: AnalysedGraph, path: Path) -> None:
        if path.suffix != ".pt2":
            raise SpecError(
                f"the torch backend writes a torch.export archive: name it '{path.stem}.pt2'"
            )
        program = self.export(model, analysed)
        if self.compile == "aoti":
            save_atomically(path, lambda p: compile_package(program, p))
        else:
            save_atomically(path, lambda p: torch.export.save(program, p))


def compile_package(program: torch.export.ExportedProgram, path: Path) -> None:
    """AOTInductor: the program compiled to a shared library inside a .pt2 package, with
    `freezing` so that weights are constants the convolutions are prepacked for."""
    if shutil.which("g++") is None and shutil.which("c++") is None:
        raise SpecError(
            "compile=aoti needs a C++ compiler: none found on PATH",
            hint="install g++, or build without --option compile=aoti",
        )
    from torch._inductor import aoti_compile_and_package

    aoti_compile_and_package(program, package_path=str(path), inductor_configs={"freezing": True})
