"""The order in which Keras lists a functional model's layers (`model.layers`).

Keras 3 keys `.weights.h5` entries by class and position in that order, so reading one
without building a Keras model means reproducing it: operations sorted by depth (the longest
path to an output), deepest first, ties broken by first visit in a depth-first walk from the
outputs that follows each layer's inputs in order.
"""

from __future__ import annotations

from xgraph.graph import Graph, Node

# The Keras layer class of each op with weights, in the snake_case Keras uses for automatic
# names and for `.weights.h5` keys: `batch_normalization_3`.
KERAS_CLASSES = {
    "conv2d": "conv2d",
    "depthwise_conv2d": "depthwise_conv2d",
    "separable_conv2d": "separable_conv2d",
    "batch_norm": "batch_normalization",
    "dense": "dense",
}


def _keras_layers_before(node: Node) -> int:
    """Layers the keras backend makes for a node: a conv with explicit padding amounts is
    preceded by its own ZeroPadding2D, which adds one to the depth of everything upstream."""
    padding = getattr(node.attrs, "padding", None)
    explicit_pad = node.op in ("conv2d", "depthwise_conv2d", "separable_conv2d") and not isinstance(
        padding, str
    )
    return 2 if explicit_pad else 1


def keras_layer_order(graph: Graph) -> list[str]:
    """Node names in the order Keras's `model.layers` would list their layers."""
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
        step = _keras_layers_before(graph[name])
        for source in graph[name].inputs:
            depth[source] = max(depth.get(source, 0), here + step)
    return sorted(depth, key=lambda name: (-depth[name], visit_index[name]))
