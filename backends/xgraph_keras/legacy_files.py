"""Legacy HDF5 weight files (`model.save("x.h5")`, keras.applications' ImageNet files):
groups named after the layers, listed in a `layer_names` attribute, each with `weight_names`.
Keras 2 files add `:0` to weight names and number automatic names from 1. The model's config
(`model_config`), where the file has one, says what each layer is; weight names only guess it
(Keras 3 names a DepthwiseConv2D's kernel `kernel`, Keras 2 `depthwise_kernel`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xgraph.ir.analysis import AnalysedGraph
from xgraph.weights.checks import WeightFileError, shown
from xgraph_keras.file_limits import (
    MOST_VARIABLES_PER_LAYER,
    most_config_bytes,
    most_layers,
    most_strings,
)
from xgraph_keras.h5_checked import child, dataset_at, string_list
from xgraph_keras.hdf5_heaps import check_global_heaps
from xgraph_keras.layer_kinds import kind_from_weight_names, ops_by_class
from xgraph_keras.matching import FileLayer, Tensor
from xgraph_keras.model_config import legacy_classes
from xgraph_keras.rules.base import class_key


def _legacy_layer(
    name: str,
    weight_names: list[str],
    arrays: list[Tensor],
    classes: dict[str, str],
    prefer: frozenset[str],
    source: str,
) -> FileLayer:
    """A legacy file's layer as the op its recorded class makes (model_config), or, where the
    file records none, the op its weights' names tell: Keras 3 names a DepthwiseConv2D's
    kernel `kernel`, as a Conv2D's, so the names alone can mislead."""
    where = f"layer '{shown(name)}'"
    short = tuple(shown(w.rsplit("/", 1)[-1].split(":", 1)[0]) for w in weight_names)
    if name in classes:
        cls = classes[name]
        kind = ops_by_class(prefer).get(class_key(cls))
        if kind is None:
            raise WeightFileError(
                source,
                f"{where} holds weights, but xgraph has no op for Keras's '{shown(cls)}' layers",
            )
        return FileLayer(kind, arrays, name, where, shown(cls), short)
    kind = kind_from_weight_names(weight_names, arrays, prefer)
    if kind is None:
        listed = ", ".join(shown(w) for w in weight_names)
        raise WeightFileError(source, f"{where} holds weights ({listed}) that xgraph cannot place")
    return FileLayer(kind, arrays, name, where, None, short)


def _layers_legacy(
    h5: Any, source: str, prefer: frozenset[str], layer_bound: int, classes: dict[str, str]
) -> list[FileLayer]:
    """The legacy layout; `classes` (layer name -> Keras class) from the file's model_config."""
    root = child(h5, "model_weights", "group", source) if "model_weights" in h5 else h5
    if "layer_names" not in root.attrs:
        raise WeightFileError(source, "not a Keras weights file (no 'layer_names' attribute)")
    layers = []
    for name in string_list(root, "layer_names", layer_bound, source):
        if name not in root:
            raise WeightFileError(
                source, f"layer '{shown(name)}' is listed in 'layer_names' but has no group"
            )
        group = child(root, name, "group", source)
        if "weight_names" not in group.attrs:
            continue
        weight_names = string_list(group, "weight_names", MOST_VARIABLES_PER_LAYER, source)
        if not weight_names:
            continue
        absent = [w for w in weight_names if w not in group]
        if absent:
            raise WeightFileError(
                source,
                f"layer '{shown(name)}' lists weights the file does not hold: "
                f"{', '.join(shown(w) for w in absent)}",
            )
        arrays = [dataset_at(group, w, source) for w in weight_names]
        layers.append(_legacy_layer(name, weight_names, arrays, classes, prefer, source))
    return layers


def read_legacy(
    path: Path, h5: Any, analysed: AnalysedGraph, prefer: frozenset[str]
) -> list[FileLayer]:
    """The legacy layout, the one whose names and config may be variable-length strings:
    the file's global heaps are walked first, within bounds for this graph."""
    source, most_bytes = str(path), most_config_bytes(analysed)
    with path.open("rb") as file:
        check_global_heaps(file, source, most_strings(analysed), most_bytes)
    classes = legacy_classes(h5, source, most_bytes)
    return _layers_legacy(h5, source, prefer, most_layers(analysed), classes)
