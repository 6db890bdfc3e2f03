"""What the keras backend knows about one op: a `KerasRule`, and the helpers rules share.

Rules import neither keras nor tensorflow: lowerings describe layers by module and class name,
and Keras's weight files are read from the facts a rule states (the layer class and its
weights in Keras's order) with h5py alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import cast

from xgraph.backend.lowering import LayerCall
from xgraph.backend.rules import op_rules
from xgraph.ir.analysis import AnalysedGraph
from xgraph.ir.graph import Node
from xgraph.weights.slots import WeightSlot, kept

LAYERS = "keras.layers"
OWN_LAYERS = "xgraph_keras.layers"  # xgraph's own, for ops no built-in layer computes

Lowering = Callable[[AnalysedGraph, Node], list[LayerCall]]


@dataclass(frozen=True)
class KerasRule:
    """An op in Keras: the layers a node becomes (the node's own layer last, named after the
    node) and, for an op with weights, that layer's class and the slot of every weight it
    can hold, in the order Keras lists them (`layer.get_weights()`, and the files). Keras's
    layout is the canonical one, and its weights' names are the canonical parameters'."""

    lower: Lowering
    layer_class: str | None = None
    weights: Mapping[str, WeightSlot] = field(default_factory=dict)
    # None: the layers before the node's own are a chain through which all its inputs pass.
    # An index: they take only that input, and the others go straight to the node's own
    # layer (scaled_add's Rescaling of the residual branch, before the Add).
    branch: int | None = None


def keras_rules() -> Mapping[str, KerasRule]:
    """Every op's keras rule, built-in and plugins', typed as the KerasRules that the
    `xgraph.op_rules` entry points register for keras."""
    return cast(Mapping[str, KerasRule], op_rules("keras"))


def weights(*pairs: tuple[str, int | None]) -> dict[str, WeightSlot]:
    """Each `(canonical name, rank)` in Keras's order; a rank of None varies with the input."""
    return {name: kept(name, rank) for name, rank in pairs}


def layer(node: Node, cls: str, **kwargs: object) -> LayerCall:
    """The node's own layer, named after the node."""
    return LayerCall(LAYERS, cls, {**kwargs, "name": node.name})


def class_key(class_name: str) -> str:
    """Keras's snake_case of a class, for automatic names and `.weights.h5` keys:
    `SeparableConv2D` -> `separable_conv2d`."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()
