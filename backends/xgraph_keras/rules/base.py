"""What the keras backend knows about one op: a `KerasRule`, and the helpers rules share.

Rules import neither keras nor tensorflow: lowerings describe built-in layers by class name,
and Keras's weight files are read from the facts a rule states (the layer class and its
weights in Keras's order) with h5py alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from xgraph.backend.lowering import LayerCall
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node

LAYERS = "keras.layers"

Lowering = Callable[[AnalysedGraph, Node], list[LayerCall]]


@dataclass(frozen=True)
class KerasWeight:
    """One weight of a Keras layer: its name, which is the canonical parameter's, and its
    rank (None: it varies with the input's)."""

    name: str
    rank: int | None


@dataclass(frozen=True)
class KerasRule:
    """An op in Keras: the layers a node becomes (the node's own layer last, named after the
    node) and, for an op with weights, that layer's class and every weight it can hold, in
    the order Keras lists them (`layer.get_weights()`, and the files)."""

    lower: Lowering
    layer_class: str | None = None
    weights: tuple[KerasWeight, ...] = ()

    @property
    def weight_names(self) -> frozenset[str]:
        """The canonical parameters this rule places (checked before a build)."""
        return frozenset(weight.name for weight in self.weights)


def weights(*pairs: tuple[str, int | None]) -> tuple[KerasWeight, ...]:
    return tuple(KerasWeight(name, rank) for name, rank in pairs)


def layer(node: Node, cls: str, **kwargs: object) -> LayerCall:
    """The node's own layer, named after the node."""
    return LayerCall(LAYERS, cls, {**kwargs, "name": node.name})


def class_key(class_name: str) -> str:
    """Keras's snake_case of a class, for automatic names and `.weights.h5` keys:
    `SeparableConv2D` -> `separable_conv2d`."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()
