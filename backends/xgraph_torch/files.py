"""Torch state dicts (`.pt`, `.pth`) as weight files, converted to and from canonical weights
through each op's torch rule. Written with the keys of the module `xgraph codegen` generates,
where a block instance's layers nest (`block5_12.0.sepconv1.depthwise.weight`), so the file
loads into it strictly; read with those keys or with the flat ones of xgraph's own torch build
(`<node>.<attribute>`: `block5_sepconv1.depthwise.weight`).

Registered under the `xgraph.weight_files` entry-point group; torch is imported only when a
file is read or written. Reading checks the archive's declarations without torch first
(xgraph_torch.archive), then every key, shape and type against the graph, and only then lets
torch map the file (`weights_only=True`, `mmap=True`: no pickle code runs, and no tensor data
is read before it is known to fit).
"""

from __future__ import annotations

import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from xgraph.backend.rules import placed_weights, require_rules
from xgraph.files import save_atomically
from xgraph.ir.analysis import AnalysedGraph
from xgraph.weights.archives import open_archive
from xgraph.weights.checks import (
    ReadOptions,
    WeightFileError,
    as_float32,
    check_dtypes,
    limited_notes,
    shown,
)
from xgraph.weights.initial import Weights
from xgraph.weights.slots import PlacedWeight
from xgraph_torch.archive import ArchiveLimits, TensorRecord, scan_state_dict

_MISFIT_HINT = "is the file from this architecture, with the same --set parameters?"
_IGNORED_SUFFIX = "num_batches_tracked"  # BatchNorm's counter: no canonical weight
# The first bytes of torch's pre-1.6 format: a pickled magic number.
_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


def _slots(analysed: AnalysedGraph, paths: dict[str, str] | None = None) -> dict[str, PlacedWeight]:
    """State dict key -> the canonical tensor it holds, for every parameter of the graph: the
    build's `<node>.<attribute>`, or with each node at its module path in `paths`."""
    paths = paths or {}
    return {
        f"{paths.get(placed.node, placed.node)}.{placed.framework_key}": placed
        for node in analysed.graph.nodes
        for placed in placed_weights(analysed, node, "torch")
    }


def _generated_slots(analysed: AnalysedGraph) -> dict[str, PlacedWeight]:
    """The slots keyed as the generated module's state dict (xgraph_torch.codegen)."""
    from xgraph_torch.codegen import module_paths

    return _slots(analysed, module_paths(analysed))


def _slots_for(
    records: dict[str, TensorRecord], analysed: AnalysedGraph
) -> dict[str, PlacedWeight]:
    """The key layout the file uses: the build's flat keys where they are all there, else the
    generated module's; the one with more keys present, for the error naming what is missing."""
    flat = _slots(analysed)
    if flat.keys() <= records.keys():
        return flat
    generated = _generated_slots(analysed)
    if generated.keys() == flat.keys():
        return flat
    found = sum(key in records for key in generated)
    return generated if found > sum(key in records for key in flat) else flat


def _torch_shape(placed: PlacedWeight) -> tuple[int, ...]:
    """The tensor's shape in torch's layout."""
    return tuple(placed.to_framework(np.empty(placed.param.shape, dtype=np.float32)).shape)


def _limits(slots: dict[str, PlacedWeight]) -> ArchiveLimits:
    # A record per tensor (BatchNorm adds a counter each) and a few of torch's own; the pickle
    # takes about 150 bytes a tensor.
    return ArchiveLimits(entries=2 * len(slots) + 64, pickle_bytes=(1 << 16) + 2048 * len(slots))


def _open(path: Path, limits: ArchiveLimits) -> zipfile.ZipFile:
    with path.open("rb") as file:
        start = file.read(len(_LEGACY_MAGIC))
    if not start:
        raise WeightFileError(path, "the file is empty, not a torch state dict")
    if start == _LEGACY_MAGIC:
        raise WeightFileError(
            path,
            "a torch file in the format before torch 1.6, which xgraph does not read",
            hint="load it with torch and save it again with torch.save (a zip archive)",
        )
    if not start.startswith(b"PK"):
        raise WeightFileError(path, "not a torch state dict (torch.save writes a zip archive)")
    return open_archive(path, limits.entries)


def _check_against_graph(
    records: dict[str, TensorRecord],
    slots: dict[str, PlacedWeight],
    analysed: AnalysedGraph,
    path: Path,
) -> None:
    missing = [f"{key} (canonical {slot.key})" for key, slot in slots.items() if key not in records]
    if missing:
        raise WeightFileError(
            path,
            f"{len(missing)} tensor(s) of '{analysed.name}' are not in the state dict",
            notes=limited_notes([f"missing: {entry}" for entry in missing]),
            hint=_MISFIT_HINT,
        )
    unknown = [k for k in records if k not in slots and not k.endswith(_IGNORED_SUFFIX)]
    if unknown:
        raise WeightFileError(
            path,
            f"{len(unknown)} tensor(s) of the state dict have no place in '{analysed.name}'",
            notes=limited_notes([f"unexpected: {shown(k)}" for k in unknown]),
            hint=_MISFIT_HINT,
        )
    for key, slot in slots.items():
        shape = _torch_shape(slot)
        if records[key].shape != shape:
            raise WeightFileError(
                path,
                f"'{key}' has shape {shown(records[key].shape)}, node '{slot.node}' needs "
                f"{shape} in torch's layout",
                hint=_MISFIT_HINT,
            )


def _torch_reason(exc: Exception) -> str:
    """torch's complaint in a line, without its advice to load with weights_only=False (the
    opposite of what to do with a file one does not trust) or its terminal colours."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if "weights_only" not in line]
    return shown(lines[0]) if lines else type(exc).__name__


def _load_mapped(path: Path) -> dict[str, Any]:
    """The state dict through torch, mapped rather than read; torch's warnings stay inside."""
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # torch raises many kinds for a damaged file
        raise WeightFileError(
            path, f"torch cannot read the state dict: {_torch_reason(exc)}"
        ) from None


def _as_numpy(value: Any, record: TensorRecord, key: str, path: Path) -> np.ndarray:
    """torch's tensor as float32 numpy, once it is what the archive declared."""
    import torch

    if (
        not isinstance(value, torch.Tensor)
        or value.layout != torch.strided
        or value.is_meta
        or tuple(value.shape) != record.shape
        or str(value.dtype).removeprefix("torch.") != record.dtype
    ):
        raise WeightFileError(path, f"'{key}': torch reads it differently from its declaration")
    value = value.detach()
    if value.dtype == torch.bfloat16:
        value = value.float()
    return as_float32(value.numpy(), copy=True)  # not a view of the mapped file


class StateDictFiles:
    name = "torch state dict"
    readable = (".pt", ".pth")
    writable = (".pt", ".pth")

    def read(self, path: Path, analysed: AnalysedGraph, options: ReadOptions) -> Weights:
        """Canonical weights from a state dict of an xgraph torch build or generated module;
        no pickle code runs, and nothing is read before every declaration fits the graph."""
        require_rules(analysed, "torch")
        limits = _limits(_slots(analysed))
        with _open(path, limits) as archive:
            records = scan_state_dict(archive, path, limits)
        slots = _slots_for(records, analysed)
        _check_against_graph(records, slots, analysed, path)
        integers = [key for key, placed in slots.items() if placed.param.integer]
        check_dtypes({key: records[key].dtype for key in slots}, path, options, integers)
        state = _load_mapped(path)
        if not isinstance(state, dict) or state.keys() != records.keys():
            raise WeightFileError(
                path, "torch reads the state dict differently from its declaration"
            )
        weights: Weights = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for key, slot in slots.items():
                value = _as_numpy(state[key], records[key], key, path)
                weights[slot.key] = slot.from_framework(value)
        return weights

    def write(self, path: Path, analysed: AnalysedGraph, weights: Weights) -> None:
        import torch

        from xgraph_torch.backend import TorchBackend
        from xgraph_torch.codegen import state_dict_keys

        state = TorchBackend().build(analysed, weights).state_dict()
        keys = state_dict_keys(analysed, list(state))  # the generated module's
        state = {keys[key]: value.contiguous() for key, value in state.items()}
        save_atomically(path, lambda target: torch.save(state, target))


STATE_DICT_FILES = StateDictFiles()
