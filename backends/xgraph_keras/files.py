"""Keras weight files read with h5py, without building a Keras model.

- Keras 3 `.weights.h5`: `layers/<class>[_<i>]/vars/<j>`, keyed by class and position in
  model.layers order, not by layer name;
- `.keras`: a zip with `config.json` (the layers, named, in that order) and the above;
- legacy HDF5 (`model.save("x.h5")`, keras.applications' ImageNet files): groups named after
  the layers, listed in a `layer_names` attribute, each with `weight_names`. Keras 2 files add
  `:0` to weight names and number automatic names from 1.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from xgraph.analysis import AnalysedGraph
from xgraph.errors import SpecError
from xgraph.files import save_atomically
from xgraph.init import Weights
from xgraph.rules import op_rules, require_rules
from xgraph_keras.matching import FileLayer, match_layers
from xgraph_keras.rules.base import class_key

_CLASS_KEY = re.compile(r"^(?P<cls>.+?)(?:_(?P<index>\d+))?$")


def _ops_by_class(prefer: frozenset[str]) -> dict[str, str]:
    """Keras class key (`batch_normalization`, as Keras 3 keys files) -> the xgraph op whose
    keras rule makes that layer, for every op with weights, plugin ops included. Where two
    ops make one class, an op of the graph being read (`prefer`) wins."""
    found: dict[str, str] = {}
    for op, rule in sorted(
        op_rules("keras").items(), key=lambda item: (item[0] not in prefer, item[0])
    ):
        if rule.layer_class:
            found.setdefault(class_key(rule.layer_class), op)
    return found


def _vars(group: Any) -> list[np.ndarray]:
    variables = group.get("vars")
    if variables is None:
        return []
    return [np.asarray(variables[key]) for key in sorted(variables, key=int)]


def _layers_v3(
    h5: Any, source: str, names_by_key: dict[str, str] | None, prefer: frozenset[str]
) -> list[FileLayer]:
    """Keras 3 layout; with `names_by_key` (from a .keras config) layers get their names."""
    if "layers" not in h5:
        raise SpecError(f"{source}: not a Keras weights file (no 'layers' group)")
    kinds = _ops_by_class(prefer)
    found = []
    for key in h5["layers"]:
        arrays = _vars(h5["layers"][key])
        if not arrays:
            continue
        match = _CLASS_KEY.match(key)
        cls = match.group("cls") if match else key
        if cls not in kinds:
            raise SpecError(
                f"{source}: layer '{key}' holds weights, but xgraph has no op for "
                f"Keras's '{cls}' layers"
            )
        index = int(match.group("index") or 0) if match else 0
        name = names_by_key.get(key) if names_by_key else None
        found.append((cls, index, FileLayer(kinds[cls], arrays, name, f"layer '{key}'")))
    found.sort(key=lambda entry: entry[1])
    return [layer for _, _, layer in found]


def _kind_from_weight_names(
    names: list[str], arrays: list[np.ndarray], prefer: frozenset[str] = frozenset()
) -> str | None:
    """The op of a legacy file's layer, which records no class: among the ops whose Keras
    layer can hold these weights (names and ranks), the one that needs the fewest others
    (a depthwise layer's weights fit a separable one too, which has a pointwise kernel more),
    an op of the graph being read (`prefer`) before others."""
    held = [
        (name.rsplit("/", 1)[-1].split(":", 1)[0], array.ndim)
        for name, array in zip(names, arrays, strict=True)
    ]
    fits = []
    for op, rule in sorted(op_rules("keras").items()):
        possible = {w.name: w.rank for w in rule.weights}
        if rule.layer_class and all(
            name in possible and possible[name] in (None, rank) for name, rank in held
        ):
            fits.append((len(possible) - len(held), op not in prefer, op))
    fits.sort()
    if not fits or (len(fits) > 1 and fits[0][:2] == fits[1][:2]):
        return None
    return fits[0][2]


def _layers_legacy(h5: Any, source: str, prefer: frozenset[str]) -> list[FileLayer]:
    root = h5.get("model_weights", h5)
    if "layer_names" not in root.attrs:
        raise SpecError(f"{source}: not a Keras weights file (no 'layer_names' attribute)")
    layers = []
    for raw_name in root.attrs["layer_names"]:
        name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
        if name not in root:
            raise SpecError(f"{source}: layer '{name}' is listed in 'layer_names' but has no group")
        group = root[name]
        weight_names = [
            w.decode() if isinstance(w, bytes) else str(w)
            for w in group.attrs.get("weight_names", [])
        ]
        if not weight_names:
            continue
        absent = [w for w in weight_names if w not in group]
        if absent:
            raise SpecError(
                f"{source}: layer '{name}' lists weights the file does not hold: "
                f"{', '.join(absent)}"
            )
        arrays = [np.asarray(group[w]) for w in weight_names]
        kind = _kind_from_weight_names(weight_names, arrays, prefer)
        if kind is None:
            raise SpecError(
                f"{source}: layer '{name}' holds weights ({', '.join(weight_names)}) "
                "that xgraph cannot place"
            )
        layers.append(FileLayer(kind, arrays, name, f"layer '{name}'"))
    return layers


def _names_from_config(config: dict[str, Any]) -> dict[str, str]:
    """Keras 3 weight keys (`batch_normalization_3`) -> layer names, from a .keras config."""
    counts: dict[str, int] = defaultdict(int)
    names = {}
    for layer in config.get("config", {}).get("layers", []):
        cls = class_key(layer["class_name"])
        index = counts[cls]
        counts[cls] += 1
        names[cls if index == 0 else f"{cls}_{index}"] = layer["config"]["name"]
    return names


def read_keras_layers(path: str, prefer: frozenset[str] = frozenset()) -> list[FileLayer]:
    """The weight groups of a .keras, .weights.h5 or legacy .h5 file, in the file's order;
    where a layer could belong to several ops, those in `prefer` are chosen."""
    import h5py

    source = str(path)
    try:
        if source.endswith(".keras"):
            with zipfile.ZipFile(path) as archive:
                config = json.loads(archive.read("config.json"))
                data = archive.read("model.weights.h5")
            with h5py.File(io.BytesIO(data), "r") as h5:
                return _layers_v3(h5, source, _names_from_config(config), prefer)
        with h5py.File(path, "r") as h5:
            if "layers" in h5:
                return _layers_v3(h5, source, None, prefer)
            return _layers_legacy(h5, source, prefer)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise SpecError(f"{source}: cannot read Keras weights: {exc}") from None


class KerasFiles:
    """Keras's weight files as an `xgraph.weight_files` format: read with h5py (no
    TensorFlow), written by Keras itself so that `model.load_weights` reads them."""

    name = "keras"
    readable = (".keras", ".weights.h5", ".h5")
    writable = (".weights.h5",)

    def read(self, path: Path, analysed: AnalysedGraph) -> Weights:
        require_rules(analysed, "keras")  # Keras's layer order follows the keras lowering
        ops = frozenset(node.op for node in analysed.graph.nodes)
        return match_layers(analysed, read_keras_layers(str(path), ops), str(path))

    def write(self, path: Path, analysed: AnalysedGraph, weights: Weights) -> None:
        from xgraph_keras.backend import KerasBackend

        model = KerasBackend().build(analysed, weights)
        save_atomically(path, model.save_weights)


KERAS_FILES = KerasFiles()
