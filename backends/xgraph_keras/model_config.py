"""A Keras model's config (the JSON of a `.keras`'s config.json and of a legacy file's
`model_config` attribute), read as untrusted input: type-checked key by key, for the layers'
classes and names in `model.layers` order."""

from __future__ import annotations

import json
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from xgraph.weights.archives import member, read_member
from xgraph.weights.checks import WeightFileError
from xgraph_keras.rules.base import class_key

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


def _layer_entries(config: object, source: str, label: str) -> list[tuple[str, str, object]]:
    """(class, name, the layer's own config entry) of each layer a model's config lists, in
    its order: the same JSON in a .keras's config.json and a legacy file's model_config
    attribute (`label`)."""
    if not isinstance(config, dict):
        raise WeightFileError(source, f"{label} is not a mapping (a JSON object)")
    layers = config.get("config")
    if not isinstance(layers, list):  # Keras 2.0 to 2.2 wrote a Sequential's layers there
        settings = _field(config, "config", dict, "", source, label)
        layers = _field(settings, "layers", list, "config.", source, label)
    found: list[tuple[str, str, object]] = []
    for position, layer in enumerate(layers):
        where = f"config.layers[{position}]"
        if not isinstance(layer, dict):
            raise WeightFileError(source, f"{label}: '{where}' is not a mapping")
        cls = _field(layer, "class_name", str, f"{where}.", source, label)
        layer_settings = _field(layer, "config", dict, f"{where}.", source, label)
        name = _field(layer_settings, "name", str, f"{where}.config.", source, label)
        # Keras 2: `package>Class` when registered
        found.append((cls.rsplit(">", 1)[-1], name, layer))
    return found


def config_layers(config: object, source: str, label: str) -> list[tuple[str, str]]:
    """(class, name) of each layer a model's config lists, in its order."""
    return [(cls, name) for cls, name, _ in _layer_entries(config, source, label)]


# The classes of a model inside a model, whose own layers the weights file nests.
MODEL_CLASSES = frozenset({"Sequential", "Functional", "Model"})


def names_from_config(config: object, source: str, nested: bool = True) -> dict[str, str]:
    """Keras 3 weight keys (`batch_normalization_3`) -> layer names, from a .keras config;
    the layers of a nested model (ConvNeXt's Sequential stem) under its key, as the weights
    file nests them: `sequential/layers/conv2d` -> `convnext_tiny_stem_conv` (one level: the
    reader takes no model nested deeper)."""
    counts: dict[str, int] = defaultdict(int)
    names = {}
    for cls, name, entry in _layer_entries(config, source, "config.json"):
        key = class_key(cls)
        index = counts[key]
        counts[key] += 1
        key = key if index == 0 else f"{key}_{index}"
        names[key] = name
        if nested and cls in MODEL_CLASSES:
            inner = names_from_config(entry, source, nested=False)
            names.update({f"{key}/layers/{k}": v for k, v in inner.items()})
    return names


def legacy_classes(h5: Any, source: str, most_bytes: int) -> dict[str, str]:
    """Layer name -> Keras class, from a legacy file's `model_config` attribute (the JSON that
    `model.save("x.h5")` writes); empty for a file without one (keras.applications' ImageNet
    files)."""
    config = legacy_config(h5, source, most_bytes)
    if config is None:
        return {}
    return {name: cls for cls, name in config_layers(config, source, "model_config")}


def legacy_config(h5: Any, source: str, most_bytes: int) -> object | None:
    """A legacy file's `model_config` attribute, parsed, or None where it has none. Its type
    and size are checked before it is read."""
    if "model_config" not in h5.attrs:
        return None
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
        return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WeightFileError(source, f"model_config is not valid JSON: {exc}") from None


def read_config(archive: zipfile.ZipFile, path: Path, limit: int) -> object:
    data = read_member(
        archive, member(archive, "config.json", limit, path, "the model's config"), path
    )
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WeightFileError(path, f"config.json is not valid JSON: {exc}") from None
