"""Keras weight files read with h5py, without building a Keras model.

- Keras 3 `.weights.h5`: `layers/<class>[_<i>]/vars/<j>`, keyed by class and position in
  model.layers order, not by layer name;
- `.keras`: a zip with `config.json` (the layers, named, in that order) and the above;
- legacy HDF5 (`model.save("x.h5")`, keras.applications' ImageNet files): groups named after
  the layers, listed in a `layer_names` attribute, each with `weight_names`. Keras 2 files add
  `:0` to weight names and number automatic names from 1. `model.save` also writes the
  model's config (`model_config`), whose classes say what each layer is; weight names only
  guess it (Keras 3 names a DepthwiseConv2D's kernel `kernel`, Keras 2 `depthwise_kernel`).

A file is untrusted input: every group, dataset and attribute is type-checked, links to
other files and datasets stored elsewhere are refused, counts are bounded by the graph, a
`.keras` archive is expanded only up to what the graph's weights can take, and tensors stay
unread (h5py datasets) until their shapes and types fit the graph.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from xgraph.backend.rules import op_rules, require_rules
from xgraph.files import save_atomically
from xgraph.ir.analysis import AnalysedGraph
from xgraph.weights.archives import copy_member, member, open_archive, read_member
from xgraph.weights.checks import ReadOptions, WeightFileError, shown
from xgraph.weights.initial import Weights
from xgraph_keras.hdf5_heaps import check_global_heaps
from xgraph_keras.matching import FileLayer, Tensor, match_layers
from xgraph_keras.rules.base import class_key

_CLASS_KEY = re.compile(r"^(?P<cls>.+?)(?:_(?P<index>\d+))?$")

# What h5py raises for a damaged file: its own errors are OSError, KeyError, ValueError,
# TypeError or RuntimeError, depending on where in the file the damage is.
_DAMAGED = (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError, EOFError)

# A layer holds a handful of variables (a BatchNorm four); a file may list every layer,
# weighted or not, and a Keras model has a few layers a node does not make (paddings).
_MOST_VARIABLES_PER_LAYER = 16
_LAYERS_PER_NODE = 4
_MORE_LAYERS = 64
# A .keras archive: config.json, metadata.json, model.weights.h5 and perhaps a few assets.
_MOST_ARCHIVE_ENTRIES = 256
# Bytes a .keras may expand to: each value as float64 three times over (a model saved with
# an optimiser's state), and room for HDF5's bookkeeping and the config, per layer.
_BYTES_PER_VALUE = 24
_BYTES_PER_LAYER = 64 << 10
_BYTES_BASE = 1 << 20
# A legacy file's model_config: Keras writes about 1 KB of JSON per layer.
_CONFIG_BYTES_PER_LAYER = 16 << 10


def _most_layers(analysed: AnalysedGraph) -> int:
    return _LAYERS_PER_NODE * len(analysed.graph) + _MORE_LAYERS


def _most_config_bytes(analysed: AnalysedGraph) -> int:
    return _CONFIG_BYTES_PER_LAYER * _most_layers(analysed) + _BYTES_BASE


def _most_strings(analysed: AnalysedGraph) -> int:
    """Variable-length strings a file may hold: a layer's name and its weights' names for
    each layer, and a few of Keras's own (versions, the model's config)."""
    return (_MOST_VARIABLES_PER_LAYER + 1) * _most_layers(analysed) + _MORE_LAYERS


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


def _child(group: Any, name: str, kind: str, source: str) -> Any:
    """`group[name]` once it is known to be a `kind` ('group' or 'dataset') of this file, not
    a link; a dataset must keep its data in this file, in chunks no larger than itself."""
    import h5py

    def where() -> str:
        return f"'{shown(group.name.rstrip('/'))}/{shown(name)}'"

    if not isinstance(group.get(name, getlink=True), h5py.HardLink):
        raise WeightFileError(source, f"{where()} is a link, which xgraph does not follow")
    found = group.get(name)
    if not isinstance(found, h5py.Group if kind == "group" else h5py.Dataset):
        raise WeightFileError(source, f"{where()} is not a {kind}")
    if kind == "dataset" and (
        found.external
        or found.is_virtual
        or found.shape is None
        or (found.chunks and math.prod(found.chunks) > max(math.prod(found.shape), 1))
    ):
        raise WeightFileError(
            source,
            f"{where()} keeps its data in other files, in chunks larger than itself, or has "
            "no shape: not a tensor",
        )
    return found


def _count_at_most(group: Any, most: int, what: str, source: str) -> None:
    if len(group) > most:
        raise WeightFileError(
            source,
            f"'{shown(group.name)}' holds {len(group):,} {what}; a file for this graph has "
            f"at most {most:,}",
        )


def _vars(layer: Any, source: str) -> list[Tensor]:
    """A Keras 3 layer's variables, `vars/0`, `vars/1`, ... in order."""
    if "vars" not in layer:
        return []
    variables = _child(layer, "vars", "group", source)
    _count_at_most(variables, _MOST_VARIABLES_PER_LAYER, "variables", source)
    keys = sorted(variables)
    if keys != sorted(str(i) for i in range(len(keys))):
        raise WeightFileError(
            source,
            f"'{shown(variables.name)}' holds entries other than 0, 1, 2, ...: "
            f"{', '.join(shown(k) for k in keys[:8])}",
        )
    return [_child(variables, str(i), "dataset", source) for i in range(len(keys))]


def _layers_v3(
    h5: Any,
    source: str,
    names_by_key: dict[str, str] | None,
    prefer: frozenset[str],
    most_layers: int,
) -> list[FileLayer]:
    """Keras 3 layout; with `names_by_key` (from a .keras config) layers get their names."""
    if "layers" not in h5:
        raise WeightFileError(source, "not a Keras weights file (no 'layers' group)")
    layers = _child(h5, "layers", "group", source)
    _count_at_most(layers, most_layers, "layers", source)
    kinds = _ops_by_class(prefer)
    found = []
    for key in layers:
        arrays = _vars(_child(layers, key, "group", source), source)
        if not arrays:
            continue
        match = _CLASS_KEY.match(key)
        cls = match.group("cls") if match else key
        if cls not in kinds:
            raise WeightFileError(
                source,
                f"layer '{shown(key)}' holds weights, but xgraph has no op for "
                f"Keras's '{shown(cls)}' layers",
            )
        index = int(match.group("index") or 0) if match else 0
        name = names_by_key.get(key) if names_by_key else None
        kind = kinds[cls]
        layer_class = op_rules("keras")[kind].layer_class
        found.append(
            (cls, index, FileLayer(kind, arrays, name, f"layer '{shown(key)}'", layer_class))
        )
    found.sort(key=lambda entry: entry[1])
    return [layer for _, _, layer in found]


def _string_list(owner: Any, attribute: str, most: int, source: str) -> list[str]:
    """A list-of-names attribute (`layer_names`, `weight_names`), its size and type checked
    before it is read."""
    declared = owner.attrs.get_id(attribute)
    where = f"attribute '{attribute}' of '{shown(owner.name)}'"
    if declared.shape == (0,):  # Keras writes a layer without weights' empty list as floats
        return []
    if len(declared.shape) != 1 or declared.dtype.kind not in "SUO":
        raise WeightFileError(source, f"{where} is not a list of names")
    if declared.shape[0] > most:
        raise WeightFileError(
            source, f"{where} lists {declared.shape[0]:,} names; at most {most:,} fit this graph"
        )
    names = []
    for raw in owner.attrs[attribute]:
        if isinstance(raw, bytes | np.bytes_):
            raw = raw.decode("utf-8")
        if not isinstance(raw, str) or not raw or raw.startswith("/"):
            raise WeightFileError(source, f"{where} holds {shown(raw)!r}, not a name")
        names.append(raw)
    return names


def _path(group: Any, path: str, source: str) -> Any:
    """A dataset at a relative path (`conv2d/kernel:0`), every step a group of this file."""
    *folders, last = path.split("/")
    for folder in folders:
        group = _child(group, folder, "group", source)
    return _child(group, last, "dataset", source)


def _kind_from_weight_names(
    names: list[str], arrays: list[Tensor], prefer: frozenset[str] = frozenset()
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
        kind = _ops_by_class(prefer).get(class_key(cls))
        if kind is None:
            raise WeightFileError(
                source,
                f"{where} holds weights, but xgraph has no op for Keras's '{shown(cls)}' layers",
            )
        return FileLayer(kind, arrays, name, where, shown(cls), short)
    kind = _kind_from_weight_names(weight_names, arrays, prefer)
    if kind is None:
        listed = ", ".join(shown(w) for w in weight_names)
        raise WeightFileError(source, f"{where} holds weights ({listed}) that xgraph cannot place")
    return FileLayer(kind, arrays, name, where, None, short)


def _layers_legacy(
    h5: Any, source: str, prefer: frozenset[str], most_layers: int, classes: dict[str, str]
) -> list[FileLayer]:
    """The legacy layout; `classes` (layer name -> Keras class) from the file's model_config."""
    root = _child(h5, "model_weights", "group", source) if "model_weights" in h5 else h5
    if "layer_names" not in root.attrs:
        raise WeightFileError(source, "not a Keras weights file (no 'layer_names' attribute)")
    layers = []
    for name in _string_list(root, "layer_names", most_layers, source):
        if name not in root:
            raise WeightFileError(
                source, f"layer '{shown(name)}' is listed in 'layer_names' but has no group"
            )
        group = _child(root, name, "group", source)
        if "weight_names" not in group.attrs:
            continue
        weight_names = _string_list(group, "weight_names", _MOST_VARIABLES_PER_LAYER, source)
        if not weight_names:
            continue
        absent = [w for w in weight_names if w not in group]
        if absent:
            raise WeightFileError(
                source,
                f"layer '{shown(name)}' lists weights the file does not hold: "
                f"{', '.join(shown(w) for w in absent)}",
            )
        arrays = [_path(group, w, source) for w in weight_names]
        layers.append(_legacy_layer(name, weight_names, arrays, classes, prefer, source))
    return layers


_KIND_NAMES: dict[type, str] = {dict: "mapping", list: "list", str: "string"}


def _field(
    mapping: dict[str, Any], key: str, kind: type, where: str, source: str, label: str
) -> Any:
    value = mapping.get(key)
    if not isinstance(value, kind):
        raise WeightFileError(
            source, f"{label}: '{where}{key}' is missing or not a {_KIND_NAMES[kind]}"
        )
    return value


def _config_layers(config: object, source: str, label: str) -> list[tuple[str, str]]:
    """(class, name) of each layer a model's config lists, in its order: the same JSON in a
    .keras's config.json and a legacy file's model_config attribute (`label`)."""
    if not isinstance(config, dict):
        raise WeightFileError(source, f"{label} is not a mapping (a JSON object)")
    layers = config.get("config")
    if not isinstance(layers, list):  # Keras 2.0 to 2.2 wrote a Sequential's layers there
        settings = _field(config, "config", dict, "", source, label)
        layers = _field(settings, "layers", list, "config.", source, label)
    found = []
    for position, layer in enumerate(layers):
        where = f"config.layers[{position}]"
        if not isinstance(layer, dict):
            raise WeightFileError(source, f"{label}: '{where}' is not a mapping")
        cls = _field(layer, "class_name", str, f"{where}.", source, label)
        layer_settings = _field(layer, "config", dict, f"{where}.", source, label)
        name = _field(layer_settings, "name", str, f"{where}.config.", source, label)
        found.append((cls.rsplit(">", 1)[-1], name))  # Keras 2: `package>Class` when registered
    return found


def _names_from_config(config: object, source: str) -> dict[str, str]:
    """Keras 3 weight keys (`batch_normalization_3`) -> layer names, from a .keras config."""
    counts: dict[str, int] = defaultdict(int)
    names = {}
    for cls, name in _config_layers(config, source, "config.json"):
        key = class_key(cls)
        index = counts[key]
        counts[key] += 1
        names[key if index == 0 else f"{key}_{index}"] = name
    return names


def _legacy_classes(h5: Any, source: str, most_bytes: int) -> dict[str, str]:
    """Layer name -> Keras class, from a legacy file's `model_config` attribute (the JSON that
    `model.save("x.h5")` writes); empty for a file without one (keras.applications' ImageNet
    files). Its type and size are checked before it is read."""
    if "model_config" not in h5.attrs:
        return {}
    import h5py

    declared = h5.attrs.get_id("model_config")
    string = h5py.check_string_dtype(declared.dtype)
    if declared.shape != () or string is None:
        raise WeightFileError(source, "attribute 'model_config' is not a string")
    if string.length is not None and string.length > most_bytes:
        raise WeightFileError(
            source,
            f"attribute 'model_config' holds {string.length:,} bytes; the config of a model "
            f"for this graph takes at most {most_bytes:,}",
        )
    try:
        text = h5.attrs["model_config"]
        config = json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WeightFileError(source, f"model_config is not valid JSON: {exc}") from None
    return {name: cls for cls, name in _config_layers(config, source, "model_config")}


def _archive_limit(analysed: AnalysedGraph) -> int:
    return (
        _BYTES_PER_VALUE * analysed.total_params
        + _BYTES_PER_LAYER * _most_layers(analysed)
        + _BYTES_BASE
    )


def _read_config(archive: zipfile.ZipFile, path: Path, limit: int) -> object:
    data = read_member(
        archive, member(archive, "config.json", limit, path, "the model's config"), path
    )
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WeightFileError(path, f"config.json is not valid JSON: {exc}") from None


@contextlib.contextmanager
def _opened(path: Path, analysed: AnalysedGraph) -> Iterator[tuple[Any, dict[str, str] | None]]:
    """The HDF5 file of weights and, for a `.keras`, the layer names its config gives; a
    `.keras` is expanded into a temporary file, within the bound for this graph."""
    import h5py

    if not path.name.lower().endswith(".keras"):
        with h5py.File(path, "r") as h5:
            yield h5, None
        return
    limit = _archive_limit(analysed)
    with open_archive(path, _MOST_ARCHIVE_ENTRIES) as archive, tempfile.TemporaryFile() as copy:
        names = _names_from_config(_read_config(archive, path, limit), str(path))
        weights = member(archive, "model.weights.h5", limit, path, "the weights")
        copy_member(archive, weights, copy, path)
        copy.seek(0)
        with h5py.File(copy, "r") as h5:
            yield h5, names


def _read_legacy(
    path: Path, h5: Any, analysed: AnalysedGraph, prefer: frozenset[str]
) -> list[FileLayer]:
    """The legacy layout, the one whose names and config may be variable-length strings:
    the file's global heaps are walked first, within bounds for this graph."""
    source, most_bytes = str(path), _most_config_bytes(analysed)
    with path.open("rb") as file:
        check_global_heaps(file, source, _most_strings(analysed), most_bytes)
    classes = _legacy_classes(h5, source, most_bytes)
    return _layers_legacy(h5, source, prefer, _most_layers(analysed), classes)


class KerasFiles:
    """Keras's weight files as an `xgraph.weight_files` format: read with h5py (no
    TensorFlow), written by Keras itself so that `model.load_weights` reads them."""

    name = "keras"
    readable = (".keras", ".weights.h5", ".h5")
    writable = (".weights.h5",)

    def read(self, path: Path, analysed: AnalysedGraph, options: ReadOptions) -> Weights:
        require_rules(analysed, "keras")  # Keras's layer order follows the keras lowering
        prefer = frozenset(node.op for node in analysed.graph.nodes)
        most_layers = _most_layers(analysed)
        source = str(path)
        try:
            with _opened(path, analysed) as (h5, names_by_key):
                if names_by_key is not None or "layers" in h5:
                    layers = _layers_v3(h5, source, names_by_key, prefer, most_layers)
                else:
                    layers = _read_legacy(path, h5, analysed, prefer)
                return match_layers(analysed, layers, source, options)
        except (*_DAMAGED, zipfile.BadZipFile) as exc:
            raise WeightFileError(path, f"cannot read Keras weights: {shown(exc)}") from None

    def write(self, path: Path, analysed: AnalysedGraph, weights: Weights) -> None:
        from xgraph_keras.backend import KerasBackend

        model = KerasBackend().build(analysed, weights)
        save_atomically(path, model.save_weights)


KERAS_FILES = KerasFiles()
