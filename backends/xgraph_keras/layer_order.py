"""The order in which Keras lists a functional model's layers (`model.layers`).

Keras 3 keys `.weights.h5` entries by class and position in that order, so reading one
without building a Keras model means reproducing it: operations sorted by depth (the longest
path to an output), deepest first, ties broken by first visit in a depth-first walk from the
outputs that follows each layer's inputs in order.
"""

from __future__ import annotations

from xgraph.ir.analysis import AnalysedGraph
from xgraph_keras.rules.base import keras_rules


def keras_layer_order(analysed: AnalysedGraph) -> list[str]:
    """Node names in the order Keras's `model.layers` would list their layers.

    A node whose lowering makes several layers (a convolution with explicit padding amounts
    is preceded by its own ZeroPadding2D) adds that many levels to the depth upstream: of
    every input, or of its `branch` input only where the rule has one (the others reach
    the node's own layer directly)."""
    graph = analysed.graph
    rules = keras_rules()
    visit_index: dict[str, int] = {}
    post_order: list[str] = []
    finished: set[str] = set()

    def walk(name: str) -> None:
        # Iterative form of a recursive walk, so deep graphs cannot hit the recursion limit.
        stack: list[tuple[str, int]] = [(name, 0)]
        while stack:
            current, next_input = stack.pop()
            if next_input == 0:
                if current in finished:
                    continue
                visit_index.setdefault(current, len(visit_index))
            inputs = graph[current].inputs
            if next_input < len(inputs):
                stack.append((current, next_input + 1))
                if inputs[next_input] not in finished:
                    stack.append((inputs[next_input], 0))
            elif current not in finished:
                finished.add(current)
                post_order.append(current)

    for output in graph.outputs:
        walk(output)
    depth: dict[str, int] = {}
    for name in reversed(post_order):
        here = depth.setdefault(name, 0)
        rule = rules[graph[name].op]
        step = len(rule.lower(analysed, graph[name]))
        for index, source in enumerate(graph[name].inputs):
            levels = step if rule.branch in (None, index) else 1
            depth[source] = max(depth.get(source, 0), here + levels)
    return sorted(depth, key=lambda name: (-depth[name], visit_index[name]))
