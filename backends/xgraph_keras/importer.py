"""`xgraph import` of Keras files: the model config of a `.keras` archive (config.json), of a
legacy `.h5` (its `model_config` attribute), or a config.json given beside a `.weights.h5`,
read as JSON only (no layer is built, no code in the file runs) into an ImportedModel.

Connections in both formats: Keras 3's `inbound_nodes` (`{"args": [...], "kwargs": {...}}`,
tensors as `__keras_tensor__` mappings whose `keras_history` is [layer, node, tensor]) and
Keras 2's (`[[layer, node, tensor, kwargs], ...]`). A model nested in the model (ConvNeXt's
Sequential stem) is flattened, its layers keeping their names."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xgraph.budgets import active_budgets
from xgraph.importing.model import (
    ImportedModel,
    ImportedNode,
    ImportFileError,
    Unsupported,
    unsupported_error,
)
from xgraph.weights.archives import open_archive
from xgraph_keras.import_layers import (
    NEAREST,
    READERS,
    TENSOR_OPERATIONS,
    Refused,
    constant_arithmetic,
    spec_axis,
)
from xgraph_keras.import_patterns import fused
from xgraph_keras.model_config import legacy_config, read_config
from xgraph_keras.rules.base import class_key

SUFFIXES = (".keras", ".h5", ".json")
MODEL_CLASSES = frozenset({"Functional", "Model", "Sequential"})
# Keras writes about 1 KB of JSON per layer (NASNetLarge: 1,033,352 bytes for 1,041 layers):
# twice that per node of the node budget, 40 MB at its default, parses well within 500 MB.
_CONFIG_BYTES_PER_NODE = 2 << 10


def _config_limit() -> int:
    return _CONFIG_BYTES_PER_NODE * active_budgets().nodes + (1 << 20)


def read_model(path: Path, config: Path | None = None) -> ImportedModel:
    """The model a Keras file (or `config`, a config.json for a `.weights.h5`) describes."""
    limit = _config_limit()
    if config is not None:
        tree = _json_file(config, limit)
        source = config
    elif path.suffix == ".keras":
        with open_archive(path, 256) as archive:
            tree = read_config(archive, path, limit)
        source = path
    elif path.suffix == ".json":
        tree, source = _json_file(path, limit), path
    elif path.name.endswith(".weights.h5"):
        raise ImportFileError(
            path,
            "a .weights.h5 holds no model config",
            hint="give the model's config with --config CONFIG.json (model.to_json()), or "
            "import the .keras file",
        )
    else:
        tree, source = _legacy_config(path, limit), path
    return _Reader(str(source)).model(tree)


def _json_file(path: Path, limit: int) -> Any:
    size = path.stat().st_size
    if size > limit:
        raise ImportFileError(path, f"{size:,} bytes of config, more than the {limit:,} read")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ImportFileError(path, f"not valid JSON: {exc}") from None


def _legacy_config(path: Path, limit: int) -> Any:
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            config = legacy_config(h5, str(path), limit)
    except OSError as exc:
        raise ImportFileError(path, f"not a readable HDF5 file: {exc}") from None
    if config is None:
        raise ImportFileError(
            path,
            "the file holds weights only (no 'model_config')",
            hint="give the model's config with --config CONFIG.json",
        )
    return config


def _tensors(value: Any) -> Iterator[tuple[str, int, int]]:
    """The (layer, node, tensor) references in a Keras 3 call's arguments, in order."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            history = value.get("config", {}).get("keras_history")
            if isinstance(history, list) and len(history) == 3:
                yield str(history[0]), history[1], history[2]
            return
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, list):
        for item in value:
            yield from _tensors(item)


def _is_operation(layer: dict[str, Any], config: Any) -> bool:
    """A Keras 3 tensor operation (`x + 3.`), not a layer: its module says so; a legacy
    `.h5`'s config leaves the module out, and an operation's config holds its name alone
    (a layer's also `trainable` and `dtype`)."""
    module = layer.get("module")
    if module is not None:
        return str(module).startswith("keras.src.ops")
    return isinstance(config, dict) and not ({"trainable", "dtype"} & set(config))


def automatic(name: str, cls: str) -> str:
    """Keras's automatic name part of a layer named `conv2d` or `conv2d_3` (its class's key),
    or "" for a name a person chose."""
    key = class_key(cls)
    if name == key or re.fullmatch(rf"{re.escape(key)}_\d+", name):
        return key
    return ""


def _input_rank(layer: dict[str, Any]) -> int | None:
    """The rank (batch included) of a Keras 3 layer's first input, as the file records it."""
    calls = layer.get("inbound_nodes")
    if not isinstance(calls, list) or not calls or not isinstance(calls[0], dict):
        return None
    stack: list[Any] = [calls[0].get("args", [])]
    while stack:
        value = stack.pop(0)
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            shape = value.get("config", {}).get("shape")
            return len(shape) if isinstance(shape, list) else None
        if isinstance(value, list):
            stack = [*value, *stack]
    return None


class _Reader:
    """One model's config walked layer by layer, nested models flattened."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.nodes: list[ImportedNode] = []
        self.unsupported: list[Unsupported] = []
        self.alias: dict[str, str] = {}  # a nested model's name -> its output node
        self.names: set[str] = set()

    def fail(self, where: str, message: str) -> ImportFileError:
        return ImportFileError(self.source, f"{where}: {message}")

    def model(self, tree: Any) -> ImportedModel:
        if not isinstance(tree, dict) or not isinstance(tree.get("config"), dict):
            raise self.fail("config", "not a Keras model config (no 'config' mapping)")
        cls = tree.get("class_name")
        if cls not in MODEL_CLASSES:
            raise self.fail("config", f"class {cls!r} is not a Keras model")
        settings = tree["config"]
        name = settings.get("name") if isinstance(settings.get("name"), str) else "imported"
        outputs = self.walk(settings, "config", None)
        if self.unsupported:
            raise unsupported_error(self.source, self.unsupported)
        nodes = sorted(self.nodes, key=lambda node: node.op != "input")
        nodes, outputs = fused(nodes, outputs)
        return ImportedModel(name, tuple(nodes), tuple(outputs), self.source)

    def walk(self, settings: dict[str, Any], where: str, feeds: str | None) -> list[str]:
        """Adds the layers of a model's config; returns its outputs' node names. `feeds`:
        the node a nested model's input is (None for the outer model)."""
        layers = settings.get("layers")
        if not isinstance(layers, list):
            raise self.fail(where, "'layers' is missing or not a list")
        sequential = "input_layers" not in settings
        previous = feeds
        for index, layer in enumerate(layers):
            at = f"{where}.layers[{index}]"
            if not isinstance(layer, dict) or not isinstance(layer.get("config"), dict):
                raise self.fail(at, "not a layer mapping with a 'config'")
            cls = str(layer.get("class_name", "")).rsplit(">", 1)[-1]
            config = layer["config"]
            name = layer.get("name", config.get("name"))
            if not isinstance(name, str) or not name:
                raise self.fail(at, "a layer without a name")
            if cls == "InputLayer":
                if feeds is not None:
                    self.alias[name] = feeds
                    previous = feeds
                    continue
                self.claim(name, at)
                self.add(ImportedNode(name, "input", {"shape": self.shape(config, at)}, ()), at)
                previous = name
                continue
            inputs = [previous] if sequential and previous else self.inbound(layer, at)
            if cls in MODEL_CLASSES:
                if len(inputs) != 1:
                    raise self.fail(at, f"nested model '{name}' takes {len(inputs)} inputs")
                (inner,) = self.walk(config, f"{at}.config", inputs[0])
                self.alias[name] = inner
                previous = inner
                continue
            if _is_operation(layer, config):
                self.operation(cls, name, layer, inputs, at)
            else:
                self.layer(cls, name, config, inputs, at, _input_rank(layer))
            previous = name
        if sequential:
            return [previous] if previous else []
        return [self.resolve(ref, f"{where}.output_layers") for ref in self.refs(settings)]

    def refs(self, settings: dict[str, Any]) -> list[str]:
        outputs = settings.get("output_layers")
        if isinstance(outputs, list) and outputs and isinstance(outputs[0], str):
            outputs = [outputs]  # Keras 3 writes a single output flat: [name, 0, 0]
        if not isinstance(outputs, list) or not outputs:
            raise self.fail("config.output_layers", "missing or empty")
        return [str(entry[0]) for entry in outputs if isinstance(entry, list) and entry]

    def resolve(self, name: str, where: str) -> str:
        name = self.alias.get(name, name)
        if name not in self.names:
            raise self.fail(where, f"refers to layer '{name}', which the config does not list")
        return name

    def inbound(self, layer: dict[str, Any], at: str) -> list[str]:
        calls = layer.get("inbound_nodes")
        if not isinstance(calls, list) or not calls:
            raise self.fail(at, "a layer with no inbound_nodes (nothing feeds it)")
        if len(calls) > 1:
            raise self.fail(at, f"layer called {len(calls)} times (a shared layer)")
        call = calls[0]
        if isinstance(call, dict):  # Keras 3
            refs = list(_tensors(call.get("args", [])))
        elif isinstance(call, list):  # Keras 2: [[layer, node, tensor, kwargs], ...]
            refs = [
                (str(entry[0]), entry[1], entry[2])
                for entry in call
                if isinstance(entry, list) and len(entry) >= 3
            ]
        else:
            raise self.fail(f"{at}.inbound_nodes[0]", "neither Keras 3's nor Keras 2's form")
        if not refs:
            raise self.fail(f"{at}.inbound_nodes[0]", "names no input tensor")
        names = []
        for source, node_index, tensor_index in refs:
            if node_index != 0 or tensor_index != 0:
                raise self.fail(
                    at, f"reads output {tensor_index} of call {node_index} of '{source}'"
                )
            names.append(self.resolve(source, f"{at}.inbound_nodes"))
        return names

    def shape(self, config: dict[str, Any], at: str) -> list[int]:
        shape = config.get("batch_shape", config.get("batch_input_shape"))
        if not isinstance(shape, list) or len(shape) < 2:
            raise self.fail(at, "an input without a batch_shape")
        dims = shape[1:]
        if not all(isinstance(d, int) and d > 0 for d in dims):
            raise self.fail(at, f"input shape {shape[1:]} is not fixed (xgraph needs every size)")
        return dims

    def layer(
        self,
        cls: str,
        name: str,
        config: dict[str, Any],
        inputs: list[str],
        at: str,
        rank: int | None = None,
    ) -> None:
        self.claim(name, at)  # refused or not: the layers it feeds still resolve
        reader = READERS.get(cls)
        if reader is None:
            reason = "runs code the file holds" if cls in ("Lambda", "TFOpLambda") else ""
            self.unsupported.append(Unsupported(f"{cls} '{name}'", at, NEAREST.get(cls), reason))
            return
        try:
            op, attrs = reader(config)
        except Refused as refused:
            self.unsupported.append(
                Unsupported(f"{cls} '{name}'", at, refused.nearest, refused.reason)
            )
            return
        if op == "concat":
            attrs = {**attrs, "axis": spec_axis(attrs["axis"], rank)}
        self.add(ImportedNode(name, op, attrs, tuple(inputs), automatic(name, cls)), at)

    def operation(
        self, cls: str, name: str, layer: dict[str, Any], inputs: list[str], at: str
    ) -> None:
        """Keras 3 tensor arithmetic the file records as an operation: between two tensors
        (ConvNeXt's `inputs + x`), or of a tensor and a number (a `rescaling`)."""
        self.claim(name, at)
        args = (
            layer["inbound_nodes"][0].get("args", [])
            if isinstance(layer["inbound_nodes"][0], dict)
            else []
        )
        numbers = [a for a in args if isinstance(a, int | float) and not isinstance(a, bool)]
        attrs: dict[str, Any]
        try:
            if len(inputs) == 2 and not numbers and cls in TENSOR_OPERATIONS:
                op, attrs = TENSOR_OPERATIONS[cls], {}
            elif len(inputs) == 1 and len(numbers) == 1 and args and args[0] is not numbers[0]:
                op, attrs = constant_arithmetic(cls, float(numbers[0]))
            else:
                raise Refused(f"the operation keras.ops.{cls} on these arguments")
        except Refused as refused:
            self.unsupported.append(
                Unsupported(f"operation {cls} '{name}'", at, refused.nearest, refused.reason)
            )
            return
        self.add(ImportedNode(name, op, attrs, tuple(inputs), automatic(name, cls)), at)

    def claim(self, name: str, at: str) -> None:
        if name in self.names or name in self.alias:
            raise self.fail(at, f"a second layer named '{name}'")
        self.names.add(name)

    def add(self, node: ImportedNode, at: str) -> None:
        self.nodes.append(node)


def source_outputs(
    path: Path, config: Path | None, names: list[str], inputs: list[Any]
) -> dict[str, Any]:
    """The source model run by Keras on `inputs`: the output of each of its layers named in
    `names` (the model's own layers; a nested model's are inside it). Loaded in Keras's safe
    mode, which refuses a file's Lambda code."""
    import numpy as np

    from xgraph_keras.framework import keras

    if config is not None:
        model = keras.models.model_from_json(config.read_text())
        model.load_weights(path)
    else:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    own = {layer.name: layer for layer in model.layers}
    found = [name for name in names if name in own]
    probe = keras.Model(model.inputs, [own[name].output for name in found])
    values = probe.predict_on_batch(inputs if len(inputs) > 1 else inputs[0])
    values = values if isinstance(values, list | tuple) else [values]
    return {name: np.asarray(value) for name, value in zip(found, values, strict=True)}


def weights_for(path: Path, config: Path | None, analysed: Any) -> dict[str, Any]:
    """The file's weights for the imported spec: the Keras weight readers' (by layer name)."""
    from xgraph.weights.formats import read_weights

    return read_weights(path, analysed)
