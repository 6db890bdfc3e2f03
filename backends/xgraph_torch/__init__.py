"""The PyTorch backend: graph → nn.Module (NCHW), canonical weights ⇄ state dict, .pt2 export."""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from xgraph.analysis import AnalysedGraph
from xgraph.errors import SpecError
from xgraph.files import save_atomically
from xgraph.graph import Node
from xgraph.init import Weights, initial_weights, weight_key
from xgraph.lowering import LayerCall
from xgraph_torch.lowering import LOWERINGS
from xgraph_torch.module import GraphModule, build_module
from xgraph_torch.weights import SLOTS

__all__ = ["GraphModule", "TorchBackend"]


def to_channels_first(array: np.ndarray) -> np.ndarray:
    return np.moveaxis(array, -1, 1) if array.ndim > 2 else array


def to_channels_last(array: np.ndarray) -> np.ndarray:
    return np.moveaxis(array, 1, -1) if array.ndim > 2 else array


class TorchBackend:
    name = "torch"
    file_suffix = ".pt2"
    lowerings = LOWERINGS

    def lower(self, analysed: AnalysedGraph, node: Node) -> LayerCall | None:
        return self.lowerings[node.op](analysed, node)

    def build(self, analysed: AnalysedGraph, weights: Weights | None = None) -> GraphModule:
        model = build_module(analysed, self.lower)
        self.set_weights(
            model, analysed, weights if weights is not None else initial_weights(analysed)
        )
        # Convolutions run about twice as fast channels_last on CPU (benchmarks/): only the
        # memory strides change, not the parameters' values, names or shapes.
        return model.to(memory_format=torch.channels_last).eval()

    def _tensor(self, model: GraphModule, node: str, attribute: str) -> torch.Tensor:
        """A node's parameter or buffer by its dotted path (`depthwise.weight`)."""
        return functools.reduce(getattr, attribute.split("."), model.get_submodule(node))

    def set_weights(self, model: GraphModule, analysed: AnalysedGraph, weights: Weights) -> None:
        with torch.no_grad():
            for node in analysed.graph.nodes:
                for param in analysed.counts[node.name].params:
                    slot = SLOTS[node.op][param.name]
                    value = slot.to_torch(np.asarray(weights[weight_key(node.name, param.name)]))
                    target = self._tensor(model, node.name, slot.attribute)
                    target.copy_(torch.from_numpy(np.ascontiguousarray(value)))

    def get_weights(self, model: GraphModule, analysed: AnalysedGraph) -> Weights:
        weights = {}
        for node in analysed.graph.nodes:
            multiplier = getattr(node.attrs, "depth_multiplier", 1)
            for param in analysed.counts[node.name].params:
                slot = SLOTS[node.op][param.name]
                value = self._tensor(model, node.name, slot.attribute).detach().cpu().numpy()
                weights[weight_key(node.name, param.name)] = slot.from_torch(value, multiplier)
        return weights

    def node_param_counts(
        self, model: GraphModule, analysed: AnalysedGraph
    ) -> dict[str, tuple[int, int]]:
        counts = {}
        for node in analysed.graph.nodes:
            if node.name not in model._modules:
                counts[node.name] = (0, 0)
                continue
            module = model.get_submodule(node.name)
            trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
            statistics = sum(
                b.numel()
                for name, b in module.named_buffers()
                if name.rsplit(".", 1)[-1] in ("running_mean", "running_var")
            )
            counts[node.name] = (trainable, statistics)
        return counts

    def read_state_dict(self, path: Path, analysed: AnalysedGraph) -> Weights:
        """Canonical weights from a state dict of an xgraph torch build; no pickle code runs."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many kinds for a damaged or foreign file
            raise SpecError(f"{path}: cannot read a torch state dict: {exc}") from None
        if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()
        ):
            raise SpecError(f"{path}: not a state dict (a mapping of names to tensors)")
        weights: Weights = {}
        missing: list[str] = []
        used = set()
        for node in analysed.graph.nodes:
            multiplier = getattr(node.attrs, "depth_multiplier", 1)
            for param in analysed.counts[node.name].params:
                slot = SLOTS[node.op][param.name]
                key = f"{node.name}.{slot.attribute}"
                if key not in state:
                    missing.append(f"{key} (canonical {weight_key(node.name, param.name)})")
                    continue
                used.add(key)
                value = state[key].detach().cpu().numpy()
                wanted = slot.to_torch(np.empty(param.shape, dtype=np.float32)).shape
                if value.shape != wanted:
                    raise SpecError(
                        f"{path}: '{key}' has shape {tuple(value.shape)}, node '{node.name}' "
                        f"needs {tuple(wanted)} in torch's layout"
                    )
                weights[weight_key(node.name, param.name)] = slot.from_torch(value, multiplier)
        if missing:
            raise SpecError(
                f"{path}: {len(missing)} tensor(s) of '{analysed.name}' are not in the state dict",
                notes=[f"missing: {entry}" for entry in missing[:8]],
                hint="is the file from this architecture, with the same --set parameters?",
            )
        unknown = [k for k in state if k not in used and not k.endswith("num_batches_tracked")]
        if unknown:
            raise SpecError(
                f"{path}: {len(unknown)} tensor(s) of the state dict have no place in "
                f"'{analysed.name}'",
                notes=[f"unexpected: {k}" for k in unknown[:8]],
                hint="is the file from this architecture, with the same --set parameters?",
            )
        return weights

    def write_state_dict(self, path: Path, analysed: AnalysedGraph, weights: Weights) -> None:
        model = self.build(analysed, weights)
        state = {key: value.contiguous() for key, value in model.state_dict().items()}
        save_atomically(path, lambda target: torch.save(state, target))

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
        contiguous = copy.deepcopy(model).to(memory_format=torch.contiguous_format).eval()
        return torch.export.export(contiguous, example, dynamic_shapes=dynamic)

    def save(self, model: GraphModule, analysed: AnalysedGraph, path: Path) -> None:
        if path.suffix != ".pt2":
            raise SpecError(
                f"the torch backend writes a torch.export archive: name it '{path.stem}.pt2'"
            )
        program = self.export(model, analysed)
        save_atomically(path, lambda p: torch.export.save(program, p))
