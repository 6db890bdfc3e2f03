"""Torch state dicts (`.pt`, `.pth`) as weight files: the keys an xgraph torch build has,
`<node>.<attribute>`, converted to and from canonical weights through each op's torch rule.

Registered under the `xgraph.weight_files` entry-point group; torch is imported only when a
file is read or written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xgraph.analysis import AnalysedGraph
from xgraph.errors import SpecError
from xgraph.files import save_atomically
from xgraph.init import Weights, weight_key
from xgraph.rules import op_rules, require_rules

_MISFIT_HINT = "is the file from this architecture, with the same --set parameters?"


class StateDictFiles:
    name = "torch state dict"
    readable = (".pt", ".pth")
    writable = (".pt", ".pth")

    def read(self, path: Path, analysed: AnalysedGraph) -> Weights:
        """Canonical weights from a state dict of an xgraph torch build; no pickle code runs."""
        import torch

        require_rules(analysed, "torch")
        rules = op_rules("torch")
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
            for param in analysed.counts[node.name].params:
                slot = rules[node.op].weights[param.name]
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
                weights[weight_key(node.name, param.name)] = slot.from_torch(value, param.shape)
        if missing:
            raise SpecError(
                f"{path}: {len(missing)} tensor(s) of '{analysed.name}' are not in the state dict",
                notes=[f"missing: {entry}" for entry in missing[:8]],
                hint=_MISFIT_HINT,
            )
        unknown = [k for k in state if k not in used and not k.endswith("num_batches_tracked")]
        if unknown:
            raise SpecError(
                f"{path}: {len(unknown)} tensor(s) of the state dict have no place in "
                f"'{analysed.name}'",
                notes=[f"unexpected: {k}" for k in unknown[:8]],
                hint=_MISFIT_HINT,
            )
        return weights

    def write(self, path: Path, analysed: AnalysedGraph, weights: Weights) -> None:
        import torch

        from xgraph_torch.backend import TorchBackend

        model = TorchBackend().build(analysed, weights)
        state = {key: value.contiguous() for key, value in model.state_dict().items()}
        save_atomically(path, lambda target: torch.save(state, target))


STATE_DICT_FILES = StateDictFiles()
