"""KerasBackend: build, weights, counts, inference and saving for Keras models."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from xgraph.analysis import AnalysedGraph
from xgraph.errors import SpecError
from xgraph.files import save_atomically
from xgraph.graph import Node
from xgraph.init import Weights, initial_weights, weight_key
from xgraph.lowering import LayerCall
from xgraph_keras.lowering import LOWERINGS

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"xgraph's keras backend needs Keras on TensorFlow; Keras was already imported with "
        f"the '{keras.backend.backend()}' backend"
    )


def instantiate(call: LayerCall) -> object:
    module = keras if call.module == "keras" else keras.layers
    return getattr(module, call.cls)(**call.kwargs)


class KerasBackend:
    name = "keras"
    file_suffix = ".keras"
    lowerings = LOWERINGS

    def lower(self, analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
        return self.lowerings[node.op](analysed, node)

    def build(self, analysed: AnalysedGraph, weights: Weights | None = None) -> keras.Model:
        values: dict[str, object] = {}
        for node in analysed.graph.nodes:
            calls = self.lower(analysed, node)
            if node.op == "input":
                values[node.name] = instantiate(calls[0])
                continue
            sources = [values[name] for name in node.inputs]
            value = sources if node.opdef.max_inputs != 1 else sources[0]
            for call in calls:
                value = instantiate(call)(value)
            values[node.name] = value
        graph = analysed.graph
        outputs = [values[name] for name in graph.outputs]
        model = keras.Model(
            inputs=[values[name] for name in graph.inputs],
            outputs=outputs[0] if len(outputs) == 1 else outputs,
            name=graph.name,
        )
        self.set_weights(
            model, analysed, weights if weights is not None else initial_weights(analysed)
        )
        return model

    def set_weights(self, model: keras.Model, analysed: AnalysedGraph, weights: Weights) -> None:
        for node in analysed.graph.nodes:
            params = analysed.counts[node.name].params
            if params:
                model.get_layer(node.name).set_weights(
                    [np.asarray(weights[weight_key(node.name, p.name)]) for p in params]
                )

    def get_weights(self, model: keras.Model, analysed: AnalysedGraph) -> Weights:
        weights = {}
        for node in analysed.graph.nodes:
            params = analysed.counts[node.name].params
            if params:
                values = model.get_layer(node.name).get_weights()
                for param, value in zip(params, values, strict=True):
                    weights[weight_key(node.name, param.name)] = value
        return weights

    def node_param_counts(
        self, model: keras.Model, analysed: AnalysedGraph
    ) -> dict[str, tuple[int, int]]:
        counts = {}
        for node in analysed.graph.nodes:
            layer = model.get_layer(node.name)
            counts[node.name] = (
                sum(int(np.prod(w.shape)) for w in layer.trainable_weights),
                sum(int(np.prod(w.shape)) for w in layer.non_trainable_weights),
            )
        return counts

    def predict(self, model: keras.Model, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        outputs = model.predict_on_batch(list(inputs) if len(inputs) > 1 else inputs[0])
        if not isinstance(outputs, list | tuple):
            outputs = [outputs]
        return [np.asarray(o) for o in outputs]

    def write_weights_h5(self, path: Path, analysed: AnalysedGraph, weights: Weights) -> None:
        """Keras 3's own `.weights.h5`, written by Keras from a model holding `weights`."""
        model = self.build(analysed, weights)
        save_atomically(path, model.save_weights)

    def save(self, model: keras.Model, analysed: AnalysedGraph, path: Path) -> None:
        if path.suffix != ".keras":
            raise SpecError(
                f"the keras backend writes a Keras archive: name it '{path.stem}.keras'"
            )
        save_atomically(path, model.save)
