"""The names the Keras backend cannot use, stated without importing keras or tensorflow.

- Model names (the spec's `name`): Keras refuses '/', and TensorFlow, which runs the model,
  opens a name scope per model whose name must match `[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*`; a
  name such as 'my net', '_net' or 'réseau' fails when the model is first called. The rule
  stated here is the plain part of that: ASCII letters, digits, '_', '.' and '-', starting
  with a letter, a digit or '.'.
- Node names become layer names, inside the model's scope, where TensorFlow takes ASCII
  only: a node name must be ASCII.
- Layer names are unique in a Keras model, and a node may become more than one layer (a
  convolution with explicit padding is a ZeroPadding2D named `<node>_pad`, then the
  convolution): no node may have the name of another node's extra layer.
"""

from __future__ import annotations

import re

from xgraph.backend.names import model_name_error, node_name_error
from xgraph.errors import Location
from xgraph.ir.analysis import AnalysedGraph
from xgraph_keras.rules import RULES, KerasRule

MODEL_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.-]*")
MODEL_NAME_RULE = (
    "Keras and TensorFlow take ASCII letters, digits, '_', '.' and '-' in a model name, "
    "starting with a letter, a digit or '.'"
)


def model_name_suggestion(name: str) -> str:
    """The name with every character the rule refuses replaced by '_', and a safe start."""
    text = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    return text if MODEL_NAME.fullmatch(text) else f"model{text}"


def check_model_name(name: str, location: Location | None) -> None:
    if not MODEL_NAME.fullmatch(name):
        raise model_name_error(
            name,
            location,
            "keras",
            MODEL_NAME_RULE,
            hint=f"for example: name: {model_name_suggestion(name)}",
        )


def check_names(analysed: AnalysedGraph, name_location: Location | None = None) -> None:
    check_model_name(analysed.name, name_location)
    nodes = analysed.graph.nodes
    for node in nodes:
        if not node.name.isascii():
            raise node_name_error(
                node,
                "keras",
                "a layer name must be ASCII (TensorFlow's name scopes)",
                hint="rename it with ASCII letters, digits and '_'",
            )
    _check_extra_layer_names(analysed)


def _check_extra_layer_names(analysed: AnalysedGraph) -> None:
    """The layers a node becomes besides its own must not take another node's name. Rules
    name such layers after their node, `<node>_<what>` (`block1_conv1_pad`), so only a node
    whose name, followed by '_', begins another node's name is lowered to see them: that
    keeps the check to about a microsecond per node."""
    graph = analysed.graph
    prefixes: set[str] = set()
    for name in graph.names:
        cut = name.find("_", 1)
        while cut != -1:
            prefixes.add(name[:cut])
            cut = name.find("_", cut + 1)
    for node in graph.nodes:
        rule = _rule(node.op) if node.name in prefixes else None
        if rule is None:
            continue  # no candidate, or an op without a Keras rule: the build reports that
        for call in rule.lower(analysed, node):
            layer = call.kwargs.get("name")
            if isinstance(layer, str) and layer != node.name and layer in graph:
                raise node_name_error(
                    graph[layer],
                    "keras",
                    f"node '{node.name}' becomes a {call.cls} layer of that name before its "
                    "own layer",
                    hint=f"rename node '{layer}'",
                )


def _rule(op: str) -> KerasRule | None:
    """The Keras rule of `op`: this package's own, or a plugin's (finding those reads every
    installed package's entry points, a few hundred ms: only for a plugin's op)."""
    if op in RULES:
        return RULES[op]
    from xgraph_keras.rules.base import keras_rules

    return keras_rules().get(op)
