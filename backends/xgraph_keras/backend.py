"""KerasBackend: build, weights, counts, inference and saving for Keras models.

Layer names equal node names, and weights are in Keras's own layout, which is the canonical
one, so a saved model loads with plain `keras.saving.load_model` (after
`import xgraph_keras.layers` where it holds one of xgraph's own layers, such as LayerScale).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from xgraph.backend.lowering import LayerCall
from xgraph.backend.rules import placed_weights, require_rules
from xgraph.errors import SpecError
from xgraph.files import save_atomically
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.weights.initial import Weights, initial_weights
from xgraph.weights.slots import PlacedWeight
from xgraph_keras.framework import keras
from xgraph_keras.rules import KerasRule
from xgraph_keras.rules.base import keras_rules


class KerasBackend:
    name = "keras"
    file_suffix = ".keras"
    options: Mapping[str, tuple[str, ...]] = {}
    layout = "nhwc (the spec's own)"

    def __init__(self) -> None:
        self.rules: Mapping[str, KerasRule] = keras_rules()

    def lower(self, analysed: AnalysedGraph, node: Node) -> list[LayerCall]:
        return self.rules[node.op].lower(analysed, node)

    def placed_weights(self, analysed: AnalysedGraph, node: Node) -> list[PlacedWeight]:
        """Each parameter of the node with its slot, in the order its Keras layer holds them
        (the rule's)."""
        order = list(self.rules[node.op].weights)
        placed = placed_weights(analysed, node, self.name)
        return sorted(placed, key=lambda weight: order.index(weight.param.name))

    def build(self, analysed: AnalysedGraph, weights: Weights | None = None) -> keras.Model:
        require_rules(analysed, self.name)
        values: dict[str, object] = {}
        for node in analysed.graph.nodes:
            calls = self.lower(analysed, node)
            if node.op == "input":
                values[node.name] = calls[0].instantiate()
                continue
            sources = [values[name] for name in node.inputs]
            branch = self.rules[node.op].branch
            if branch is not None:  # the layers before the node's own take that input alone
                for call in calls[:-1]:
                    sources[branch] = call.instantiate()(sources[branch])
                calls = calls[-1:]
            value = sources if node.opdef.max_inputs != 1 else sources[0]
            for call in calls:
                value = call.instantiate()(value)
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
            keys = [placed.key for placed in self.placed_weights(analysed, node)]
            if keys:
                layer = model.get_layer(node.name)
                layer.set_weights([np.asarray(weights[k]) for k in keys])
                if hasattr(layer, "finalize_state"):  # Normalization copies its statistics
                    layer.finalize_state()

    def get_weights(self, model: keras.Model, analysed: AnalysedGraph) -> Weights:
        weights: Weights = {}
        for node in analysed.graph.nodes:
            keys = [placed.key for placed in self.placed_weights(analysed, node)]
            if keys:
                values = model.get_layer(node.name).get_weights()
                weights.update(zip(keys, values, strict=True))
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

    def load(self, path: Path) -> keras.Model:
        """A .keras file as `predict` takes it (`xgraph predict`), xgraph's own layers known."""
        import xgraph_keras.layers  # noqa: F401  (registers them with Keras)

        return keras.saving.load_model(path)

    def save(self, model: keras.Model, analysed: AnalysedGraph, path: Path) -> None:
        if path.suffix != ".keras":
            raise SpecError(
                f"the keras backend writes a Keras archive: name it '{path.stem}.keras'"
            )
        save_atomically(path, model.save)
