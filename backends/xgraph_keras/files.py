"""Keras weight files read with h5py, without building a Keras model.

- Keras 3 `.weights.h5`: `layers/<class>[_<i>]/vars/<j>`, keyed by class and position in
  model.layers order, not by layer name;
- `.keras`: a zip with `config.json` (the layers, named, in that order) and the above;
- legacy HDF5 (`model.save("x.h5")`, keras.applications' ImageNet files): groups named after
  the layers, listed in a `layer_names` attribute, each with `weight_names`. Keras 2 files add
  `:0` to weight names and number automatic names from 1. `model.save` also writes the
  model's config (`model_config`), whose classes say what each layer is; weight names only
  guess it (Keras 3 names a DepthwiseConv2D's kernel `kernel`, Keras 2 `depthwise_kernel`):
  xgraph_keras.legacy_files.

A file is untrusted input: every group, dataset and attribute is type-checked, links to
other files and datasets stored elsewhere are refused, counts are bounded by the graph, a
`.keras` archive is expanded only up to what the graph's weights can take, and tensors stay
unread (h5py datasets) until their shapes and types fit the graph (xgraph_keras.h5_checked,
xgraph_keras.model_config, with bounds from xgraph_keras.file_limits).
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xgraph.backend.rules import require_rules
from xgraph.files import save_atomically
from xgraph.ir.analysis import AnalysedGraph
from xgraph.weights.archives import copy_member, member, open_archive
from xgraph.weights.checks import ReadOptions, WeightFileError, shown
from xgraph.weights.initial import Weights
from xgraph_keras.file_limits import (
    MOST_ARCHIVE_ENTRIES,
    MOST_VARIABLES_PER_LAYER,
    archive_limit,
    most_layers,
)
from xgraph_keras.h5_checked import child, count_at_most
from xgraph_keras.layer_kinds import ops_by_class
from xgraph_keras.legacy_files import read_legacy
from xgraph_keras.matching import FileLayer, Tensor, match_layers
from xgraph_keras.model_config import names_from_config, read_config
from xgraph_keras.rules.base import keras_rules

_CLASS_KEY = re.compile(r"^(?P<cls>.+?)(?:_(?P<index>\d+))?$")

# What h5py raises for a damaged file: its own errors are OSError, KeyError, ValueError,
# TypeError or RuntimeError, depending on where in the file the damage is.
_DAMAGED = (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError, EOFError)


def _vars(layer: Any, source: str) -> list[Tensor]:
    """A Keras 3 layer's variables, `vars/0`, `vars/1`, ... in order."""
    if "vars" not in layer:
        return []
    variables = child(layer, "vars", "group", source)
    count_at_most(variables, MOST_VARIABLES_PER_LAYER, "variables", source)
    keys = sorted(variables)
    if keys != sorted(str(i) for i in range(len(keys))):
        raise WeightFileError(
            source,
            f"'{shown(variables.name)}' holds entries other than 0, 1, 2, ...: "
            f"{', '.join(shown(k) for k in keys[:8])}",
        )
    return [child(variables, str(i), "dataset", source) for i in range(len(keys))]


def _layers_v3(
    h5: Any,
    source: str,
    names_by_key: dict[str, str] | None,
    prefer: frozenset[str],
    layer_bound: int,
) -> list[FileLayer]:
    """Keras 3 layout; with `names_by_key` (from a .keras config) layers get their names.
    The layers of a nested model (ConvNeXt's Sequential stem) are read from its own
    `layers` group: named by the config, or else marked with the nested model's position
    among the file's (xgraph_keras.nested places them)."""
    if "layers" not in h5:
        raise WeightFileError(source, "not a Keras weights file (no 'layers' group)")
    kinds = ops_by_class(prefer)
    found, nested = _layers_in(
        child(h5, "layers", "group", source), "", source, names_by_key, kinds, layer_bound
    )
    classes = {cls for cls, _, _ in nested}
    if names_by_key is None and len(classes) > 1:
        raise WeightFileError(
            source,
            f"nested models of several classes ({', '.join(sorted(map(shown, classes)))}): a "
            ".weights.h5 numbers each class apart, so their order is unknown",
            hint="read the model's .keras file instead: its config names every layer",
        )
    in_order = sorted(nested, key=lambda entry: _class_and_index(entry[1])[1])
    for position, (_, key, group) in enumerate(in_order):
        inner = child(group, "layers", "group", source)
        layers, _ = _layers_in(inner, f"{key}/layers/", source, names_by_key, kinds, layer_bound)
        for layer in layers:
            if names_by_key is None:
                layer.nested = position
            found.append(layer)
    return found


def _class_and_index(key: str) -> tuple[str, int]:
    """Keras 3's key of a layer, `<class>_<index>` (`conv2d_3`, or `conv2d` for the first)."""
    match = _CLASS_KEY.match(key)
    return (match.group("cls"), int(match.group("index") or 0)) if match else (key, 0)


def _layers_in(
    layers: Any,
    prefix: str,
    source: str,
    names_by_key: dict[str, str] | None,
    kinds: dict[str, str],
    layer_bound: int,
) -> tuple[list[FileLayer], list[tuple[str, str, Any]]]:
    """The layers with weights of one `layers` group, in each class's order, and its nested
    models (groups with `layers` of their own) as (class, key, group), for the caller: one
    level deep at most."""
    count_at_most(layers, layer_bound, "layers", source)
    found = []
    nested = []
    for key in layers:
        path = f"{prefix}{key}"
        layer = child(layers, key, "group", source)
        cls, index = _class_and_index(key)
        if "layers" in layer:
            if prefix:
                raise WeightFileError(
                    source, f"'{shown(path)}' is a model inside a nested model: not read"
                )
            nested.append((cls, key, layer))
            continue
        arrays = _vars(layer, source)
        if not arrays:
            continue
        if cls not in kinds:
            raise WeightFileError(
                source,
                f"layer '{shown(path)}' holds weights, but xgraph has no op for "
                f"Keras's '{shown(cls)}' layers",
            )
        name = names_by_key.get(path) if names_by_key else None
        kind = kinds[cls]
        layer_class = keras_rules()[kind].layer_class
        found.append((index, FileLayer(kind, arrays, name, f"layer '{shown(path)}'", layer_class)))
    found.sort(key=lambda entry: entry[0])
    return [layer for _, layer in found], nested


@contextlib.contextmanager
def _opened(path: Path, analysed: AnalysedGraph) -> Iterator[tuple[Any, dict[str, str] | None]]:
    """The HDF5 file of weights and, for a `.keras`, the layer names its config gives; a
    `.keras` is expanded into a temporary file, within the bound for this graph."""
    import h5py

    if not path.name.lower().endswith(".keras"):
        with h5py.File(path, "r") as h5:
            yield h5, None
        return
    limit = archive_limit(analysed)
    with open_archive(path, MOST_ARCHIVE_ENTRIES) as archive, tempfile.TemporaryFile() as copy:
        names = names_from_config(read_config(archive, path, limit), str(path))
        weights = member(archive, "model.weights.h5", limit, path, "the weights")
        copy_member(archive, weights, copy, path)
        copy.seek(0)
        with h5py.File(copy, "r") as h5:
            yield h5, names


class KerasFiles:
    """Keras's weight files as an `xgraph.weight_files` format: read with h5py (no
    TensorFlow), written by Keras itself so that `model.load_weights` reads them."""

    name = "keras"
    readable = (".keras", ".weights.h5", ".h5")
    writable = (".weights.h5",)

    def read(self, path: Path, analysed: AnalysedGraph, options: ReadOptions) -> Weights:
        require_rules(analysed, "keras")  # Keras's layer order follows the keras lowering
        prefer = frozenset(node.op for node in analysed.graph.nodes)
        layer_bound = most_layers(analysed)
        source = str(path)
        try:
            with _opened(path, analysed) as (h5, names_by_key):
                if names_by_key is not None or "layers" in h5:
                    layers = _layers_v3(h5, source, names_by_key, prefer, layer_bound)
                else:
                    layers = read_legacy(path, h5, analysed, prefer)
                return match_layers(analysed, layers, source, options)
        except (*_DAMAGED, zipfile.BadZipFile) as exc:
            raise WeightFileError(path, f"cannot read Keras weights: {shown(exc)}") from None

    def write(self, path: Path, analysed: AnalysedGraph, weights: Weights) -> None:
        from xgraph_keras.backend import KerasBackend

        model = KerasBackend().build(analysed, weights)
        save_atomically(path, model.save_weights)


KERAS_FILES = KerasFiles()
