"""What the zoo tests share: a configuration of a keras.applications model and the same
configuration of its spec (`Variant`), the real Keras model's facts (random weights, random
BatchNorm and Normalization statistics, its `.weights.h5`, its outputs), and the checks that
the spec is that model, layer for node and number for number."""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xgraph.api import load
from xgraph.backend import load_backend
from xgraph.ir.analysis import AnalysedGraph
from xgraph.weights.initial import Weights

SPECS = Path(__file__).resolve().parent.parent / "specs"
LOGITS_TOLERANCE = 1e-5
FEATURES_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Variant:
    """One configuration of one model: the Keras function's arguments, the same as `--set`
    overrides of the spec, and the explicitly named nodes compared besides the output.
    `pixels` is the range of the random input: models that rescale their input themselves
    (EfficientNet, MobileNetV3) take pixel values, the others values around zero."""

    id: str
    spec: str
    keras_function: str
    keras_args: dict[str, Any] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    batch: int = 2
    pixels: tuple[float, float] = (-1.0, 1.0)
    size: tuple[int, int, int] = (224, 224, 3)
    # Operations Keras's model builds from tensor arithmetic (ConvNeXt's `inputs + x`), not
    # as layers, that are nodes of the spec: their class names (`Add`).
    keras_ops: tuple[str, ...] = ()

    @property
    def input_size(self) -> tuple[int, int, int]:
        return tuple(self.keras_args.get("input_shape", self.size))  # type: ignore[return-value]


def import_keras() -> Any:
    """Keras on TensorFlow, chosen before keras is first imported."""
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras


def keras_constructor(name: str) -> Any:
    """A keras.applications constructor, or one of the family functions the named ones call
    (`EfficientNet`, `EfficientNetV2`, which alone take `drop_connect_rate`; `ConvNeXt`,
    which alone takes `drop_path_rate`)."""
    keras = import_keras()
    if hasattr(keras.applications, name):
        return getattr(keras.applications, name)
    from keras.src.applications import convnext, efficientnet, efficientnet_v2

    families = (efficientnet, efficientnet_v2, convnext)
    return next(getattr(family, name) for family in families if hasattr(family, name))


def build_keras(variant: Variant) -> Any:
    """The Keras model of `variant`, weights=None, logits out, in a fresh session (automatic
    layer names such as `re_lu_3` count from zero, as the specs write them)."""
    keras = import_keras()
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    build = keras_constructor(variant.keras_function)
    return build(weights=None, classifier_activation=None, **variant.keras_args)


def flat_layers(model: Any, keras_ops: tuple[str, ...] = ()) -> list[Any]:
    """`model.layers` with nested models (ConvNeXt's Sequential stem) replaced by their own
    layers, as the spec writes them, and the operations of the classes `keras_ops`."""
    keras = import_keras()
    found = []
    # A Sequential lists its layers only; a functional model its operations too.
    for operation in getattr(model, "operations", model.layers):
        if isinstance(operation, keras.Model):
            nested = flat_layers(operation, keras_ops)
            found += [layer for layer in nested if not isinstance(layer, keras.layers.InputLayer)]
        elif isinstance(operation, keras.layers.Layer) or type(operation).__name__ in keras_ops:
            found.append(operation)
    return found


def randomise(model: Any, seed: int) -> None:
    """Perturbed kernels, random biases, BatchNorm and Normalization statistics far from
    (0, 1), LayerScale's gammas near 1 (at 1e-6 they would silence their branches);
    Normalization takes its new statistics in (`finalize_state`, which `set_weights` does
    not call)."""
    rng = np.random.default_rng(seed)
    for layer in flat_layers(model):
        values = []
        for variable, value in zip(layer.weights, layer.get_weights(), strict=True):
            if variable.name in ("gamma", "moving_variance", "variance") or (
                type(layer).__name__ == "LayerScale"
            ):
                value = rng.uniform(0.5, 1.5, value.shape)
            elif variable.name in ("beta", "moving_mean", "bias"):
                value = rng.normal(0.0, 0.1, value.shape)
            elif variable.name == "mean":
                value = rng.uniform(0.3, 0.6, value.shape)
            elif variable.name == "count":
                value = np.asarray(1000, dtype=value.dtype)
            else:
                value = value * rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
            value = np.asarray(value)
            values.append(value.astype(np.float32) if value.dtype.kind == "f" else value)
        layer.set_weights(values)
        if hasattr(layer, "finalize_state"):
            layer.finalize_state()


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / np.abs(want).max())


def layer_facts(layer: Any) -> tuple[tuple[int, ...], int, int]:
    """Output shape (batch excluded) and trainable / non-trainable counts of a layer, or of
    an operation (which has no weights, and no `output` of its own)."""
    weights = getattr(layer, "trainable_weights", []), getattr(layer, "non_trainable_weights", [])
    trainable, non_trainable = (sum(int(np.prod(v.shape)) for v in group) for group in weights)
    output = layer.output if hasattr(layer, "output") else None
    if output is None:
        output = layer._inbound_nodes[0].output_tensors[0]
    return tuple(output.shape[1:]), trainable, non_trainable


@dataclass(frozen=True)
class KerasFacts:
    """What the Keras model says about itself: per layer, its output shape (batch excluded)
    and trainable / non-trainable counts; its totals; and, when run, its weights file and
    its outputs at the variant's features and at its own output, for `x`."""

    layers: dict[str, tuple[tuple[int, ...], int, int]]
    totals: tuple[int, int]
    config: str = ""  # the model's config, as a .keras's config.json holds it
    # the attributes `model.save("m.h5")` writes (its legacy `model_config`), weights aside
    legacy: dict[str, Any] = field(default_factory=dict)
    weights_file: Path | None = None
    x: np.ndarray | None = None
    outputs: list[np.ndarray] = field(default_factory=list)


def keras_facts(variant: Variant, folder: Path | None = None) -> KerasFacts:
    """The facts of `variant`'s Keras model; with a `folder`, randomised, saved there as
    `.weights.h5`, and run on a random input."""
    keras = import_keras()
    model = build_keras(variant)
    layers = {layer.name: layer_facts(layer) for layer in flat_layers(model, variant.keras_ops)}
    totals = (
        sum(int(np.prod(v.shape)) for v in model.trainable_weights),
        sum(int(np.prod(v.shape)) for v in model.non_trainable_weights),
    )
    config = model.to_json()
    legacy = legacy_attributes(model)
    if folder is None:
        keras.backend.clear_session()
        return KerasFacts(layers, totals, config, legacy)
    randomise(model, seed=1)
    weights_file = folder / f"{variant.id}.weights.h5"
    model.save_weights(weights_file)
    low, high = variant.pixels
    x = np.random.default_rng(2).uniform(low, high, (variant.batch, *variant.input_size))
    x = x.astype(np.float32)
    named = [model.get_layer(name).output for name in variant.features]
    outputs = keras.Model(model.input, [*named, model.output]).predict_on_batch(x)
    keras.backend.clear_session()
    outputs = [np.asarray(y) for y in outputs]
    return KerasFacts(layers, totals, config, legacy, weights_file, x, outputs)


def legacy_attributes(model: Any) -> dict[str, Any]:
    """The attributes `model.save("m.h5")` writes (Keras's own metadata function, in its
    legacy-config scope), without the weights it writes beside them."""
    import json

    from keras.src.legacy.saving import json_utils, saving_options, saving_utils

    with saving_options.keras_option_scope(use_legacy_config=True):
        metadata = saving_utils.model_metadata(model, False)
    return {
        key: json.dumps(value, default=json_utils.get_json_type).encode("utf8")
        if isinstance(value, dict | list | tuple)
        else value
        for key, value in metadata.items()
    }


def imported(keras: KerasFacts, folder: Path) -> AnalysedGraph:
    """The spec `xgraph import` writes from the Keras model's config, analysed; the same
    spec, word for word, from a `.keras` archive holding that config and from a legacy `.h5`
    holding the attributes Keras writes into one (the weights are read from the
    `.weights.h5`: both containers' weights are tested on a small model)."""
    import zipfile

    import h5py

    from xgraph.importing import imported_spec

    config = folder / "config.json"
    config.write_text(keras.config)
    _, analysed = imported_spec(config, str(folder / "imported.yaml"))
    archive = folder / "model.keras"
    with zipfile.ZipFile(archive, "w") as writing:
        writing.writestr("config.json", keras.config)
    legacy = folder / "model.h5"
    with h5py.File(legacy, "w") as h5:
        h5.attrs.update(keras.legacy)
    flat, _ = imported_spec(config, str(folder / "imported.yaml"), structure=False)
    for path in (archive, legacy):  # flat: the reading is compared, not block recovery again
        again, _ = imported_spec(path, str(folder / "imported.yaml"), structure=False)
        assert again.split("\n", 1)[1] == flat.split("\n", 1)[1], path.name  # line 1: origin
    return analysed


# Keras's automatic layer names (`add_7`, `activation_3`, `conv2d_8`): a spec may name those
# layers after its blocks instead (ConvNeXt's residual `inputs + x` is `..._block_1_add`,
# NASNet's cells name their ReLUs and paddings).
AUTOMATIC = re.compile(r"^[a-z][a-z0-9]*(_[a-z][a-z0-9]*)*(_\d+)?$")


def as_float32(attrs: Any) -> Any:
    """Attributes with their numbers as the float32 a model computes with (an imported
    `(0.229 * 255) ** 2` is the spec's 3409.976025)."""
    if hasattr(attrs, "model_dump"):
        attrs = attrs.model_dump()
    if isinstance(attrs, dict):
        return {key: as_float32(value) for key, value in attrs.items()}
    if isinstance(attrs, list | tuple):
        return [as_float32(value) for value in attrs]
    if isinstance(attrs, float):
        return float(np.float32(attrs))
    return attrs


def downstream(analysed: AnalysedGraph) -> dict[Any, str]:
    """Each node's op and attributes and, recursively, those of the nodes it feeds (with the
    input position): tells apart siblings with one input and one op (InceptionV3's two 1x1
    convolutions of 64 filters) by what they lead to."""
    graph = analysed.graph
    found: dict[Any, str] = {}
    for node in reversed(list(graph.nodes)):
        fed = sorted(
            f"{graph[c].inputs.index(node.name)}:{found[c]}" for c in graph.consumers(node.name)
        )
        text = repr((node.op, as_float32(node.attrs), fed))
        found[node.name] = hashlib.sha256(text.encode()).hexdigest()
    return found


def assert_same_graph(got: AnalysedGraph, want: AnalysedGraph) -> None:
    """The same graph: each imported node paired, in topological order, with the spec's node
    of the same op, attributes and (paired) inputs, its namesake where that is one of them
    (else the imported name must be a Keras automatic one: `conv2d_9`); then the same shapes
    and counts: what `xgraph diff` compares, parameter names and blocks aside."""
    assert len(got.graph) == len(want.graph)
    ahead = {**downstream(got), **{("want", k): v for k, v in downstream(want).items()}}
    renamed: dict[str, str] = {}
    taken: set[str] = set()
    for other in got.graph.nodes:
        inputs = tuple(renamed[name] for name in other.inputs)
        fits = [
            node.name
            for node in want.graph.nodes
            if node.name not in taken
            and (node.op, node.inputs) == (other.op, inputs)
            and ahead[("want", node.name)] == ahead[other.name]
        ]
        assert fits, (other.name, other.op, inputs)
        if other.name not in fits:
            assert AUTOMATIC.match(other.name), (other.name, fits)
        renamed[other.name] = other.name if other.name in fits else fits[0]
        taken.add(renamed[other.name])
    for other in got.graph.nodes:
        node = want.graph[renamed[other.name]]
        inputs = tuple(renamed[name] for name in other.inputs)
        assert (other.op, inputs) == (node.op, node.inputs), node.name
        assert as_float32(other.attrs) == as_float32(node.attrs), node.name
        assert got.shapes[other.name] == want.shapes[node.name], node.name
        assert got.counts[other.name] == want.counts[node.name], node.name


def analysed_spec(variant: Variant) -> AnalysedGraph:
    return load(SPECS / f"{variant.spec}.yaml", [*variant.overrides, "classifier_activation=none"])


def assert_layers_match(analysed: AnalysedGraph, keras: KerasFacts) -> None:
    """Node for layer: explicitly named layers by name, with their output shape and counts;
    the automatically named ones (InceptionV3's branches, global pools) as a multiset of
    (shape, counts), since their names are Keras's numbering, not the spec's."""
    assert len(analysed.graph) == len(keras.layers)
    assert (analysed.trainable_params, analysed.non_trainable_params) == keras.totals
    spec_only: Counter = Counter()
    for node in analysed.graph.nodes:
        counts = analysed.counts[node.name]
        facts = (analysed.shapes[node.name], counts.trainable, counts.non_trainable)
        if node.name in keras.layers:
            assert facts == keras.layers[node.name], node.name
        else:
            spec_only[facts] += 1
    keras_only = Counter(
        facts for name, facts in keras.layers.items() if name not in analysed.graph
    )
    assert spec_only == keras_only


def assert_outputs_match(
    analysed: AnalysedGraph,
    weights: Weights,
    variant: Variant,
    keras: KerasFacts,
    backend_name: str,
) -> dict[str, float]:
    """The backend's build with Keras's weights, cut to the features and the output."""
    assert keras.x is not None
    names = (*variant.features, *analysed.graph.outputs)
    features = analysed.with_outputs(names)
    kept = {node.name for node in features.graph.nodes}
    weights = {key: value for key, value in weights.items() if key.split("/")[0] in kept}
    backend = load_backend(backend_name)
    got = backend.predict(backend.build(features, weights), [keras.x])
    errors = {}
    for name, a, b in zip(names, got, keras.outputs, strict=True):
        assert a.shape == b.shape, name
        errors[name] = relative_error(a, b)
    tolerances = [FEATURES_TOLERANCE] * len(variant.features) + [LOGITS_TOLERANCE]
    for (name, error), tolerance in zip(errors.items(), tolerances, strict=True):
        assert error <= tolerance, f"{backend_name} {name}: relative error {error:.2e}"
    return errors


# keras.applications constructors: spec -> (Keras function, default input size, (total,
# trainable, non-trainable) parameters with weights=None).
Constructors = dict[str, tuple[str, int, tuple[int, int, int]]]
VariantMaker = Callable[..., Variant]


def configure(
    constructors: Constructors,
    id: str,
    spec: str,
    args: dict | None = None,
    sets: tuple[str, ...] = (),
    **more: Any,
) -> Variant:
    """A configuration of `spec`'s constructor; Keras is always given the input size (without
    it, MobileNetV3 and headless models leave height and width undefined)."""
    function, size, _ = constructors[spec]
    keras_args = {"input_shape": (size, size, 3), **(args or {})}
    return Variant(id, spec, function, keras_args, sets, **more)


def sized(
    make: VariantMaker,
    id: str,
    spec: str,
    size: int | tuple[int, int],
    args: dict | None = None,
    sets: tuple[str, ...] = (),
    **more: Any,
) -> Variant:
    """`make`'s configuration at another input size, given to Keras and to the spec's --set."""
    height, width = (size, size) if isinstance(size, int) else size
    keras_args = {"input_shape": (height, width, 3), **(args or {})}
    return make(id, spec, keras_args, (f"input_shape=[{height},{width},3]", *sets), **more)


def assert_totals(constructors: Constructors, spec: str) -> None:
    """The spec at its defaults has the constructor's parameter counts and input size."""
    analysed = load(SPECS / f"{spec}.yaml")
    counts = (analysed.total_params, analysed.trainable_params, analysed.non_trainable_params)
    assert counts == constructors[spec][2]
    size = constructors[spec][1]
    assert analysed.shapes[analysed.graph.inputs[0]] == (size, size, 3)


def assert_numbers(variant: Variant, keras: KerasFacts) -> None:
    """Keras's weights file read by xgraph makes the torch, Keras and ONNX builds compute
    Keras's numbers at the output and at the variant's named layers."""
    from xgraph.weights.formats import read_weights

    analysed = analysed_spec(variant)
    assert_layers_match(analysed, keras)
    assert keras.weights_file is not None
    weights = read_weights(keras.weights_file, analysed)
    for backend_name in ("torch", "keras", "onnx"):
        errors = assert_outputs_match(analysed, weights, variant, keras, backend_name)
        print(variant.id, backend_name, {k: f"{v:.1e}" for k, v in errors.items()})
    assert_import_computes_keras(variant, keras, analysed)


def assert_structure(variant: Variant, folder: Path) -> None:
    """The spec is the Keras model layer for node; and `xgraph import` of the model's config
    writes the same graph (issue 26)."""
    spec = analysed_spec(variant)
    keras = keras_facts(variant)
    assert_layers_match(spec, keras)
    got = imported(keras, folder)
    assert_same_graph(got, spec)
    assert_no_structural_change(got, spec)


def structural_changes(got: AnalysedGraph, want: AnalysedGraph) -> tuple[list[Any], Any]:
    """What `xgraph diff got want` adds, removes or changes beyond a number the models
    compute with as the same float32 (the config's 0.07500000000000001 is the spec's 0.075),
    and the diff itself (its renamed nodes)."""
    from xgraph.reports.diff import diff_graphs

    diff = diff_graphs(got, want)
    changed = [
        (change.name, name, before, after)
        for change in diff.changed
        for name, before, after in change.changes
        if as_float32(before) != as_float32(after)
    ]
    return [*diff.added, *diff.removed, *changed], diff


def assert_no_structural_change(got: AnalysedGraph, want: AnalysedGraph) -> None:
    """`xgraph diff imported.yaml specs/NAME.yaml` adds, removes and changes no node: the
    layers Keras names automatically are renamed nodes, attributes differ at most as
    float32 (the config's 1.001e-05 is the spec's)."""
    changes, diff = structural_changes(got, want)
    assert not changes, changes
    assert all(AUTOMATIC.match(before) for before, _ in diff.renamed_nodes)


def assert_import_computes_keras(
    variant: Variant, keras: KerasFacts, analysed: AnalysedGraph
) -> None:
    """`xgraph import` of the model's config is the spec's graph, and with the weights file
    read for it, its torch build computes Keras's numbers (issue 26)."""
    from xgraph.weights.formats import read_weights

    assert keras.weights_file is not None
    spec = imported(keras, keras.weights_file.parent)
    assert_same_graph(spec, analysed)
    assert_no_structural_change(spec, analysed)
    weights = read_weights(keras.weights_file, spec)
    assert_outputs_match(spec, weights, variant, keras, "torch")
