"""xgraph's own ONNX files write some nodes in two parts: a fused activation as `<node>/pre`
then the activation named `<node>`, a global pool as `<node>/pooled` then a Flatten named
`<node>`, a separable convolution as `<node>/depthwise` then the pointwise one named
`<node>`. Imported, each pair is that one node again. And a node read from a part
(`<node>/reshaped`, `<node>/normalised`) takes the name of the Transpose that ends it."""

from __future__ import annotations

from typing import Any

from xgraph.importing.model import ImportedNode

# ops whose layer takes a fused activation
FUSED_ACTIVATION = frozenset({"conv2d", "depthwise_conv2d", "separable_conv2d", "dense"})


def separable(depthwise: ImportedNode, pointwise: ImportedNode) -> dict[str, Any]:
    """A separable convolution's attributes from its two ONNX convolutions."""
    keys = ("kernel_size", "strides", "dilation_rate", "padding", "depth_multiplier")
    return {
        **{key: depthwise.attrs[key] for key in keys},
        "filters": pointwise.attrs["filters"],
        "use_bias": pointwise.attrs["use_bias"],
        "activation": pointwise.attrs.get("activation", "linear"),
    }


def own_parts_fused(
    nodes: list[ImportedNode], weights: dict[str, Any]
) -> tuple[list[ImportedNode], dict[str, str]]:
    """The nodes with each pair as one, and the names of the parts that went (-> the node);
    `weights` are moved to the node's name in place."""
    consumers: dict[str, int] = {}
    for node in nodes:
        for source in node.inputs:
            consumers[source] = consumers.get(source, 0) + 1
    by_name = {node.name: node for node in nodes}
    renamed: dict[str, str] = {}
    for node in nodes:
        if len(node.inputs) != 1 or node.inputs[0] not in by_name:
            continue
        part = by_name[node.inputs[0]]
        if consumers.get(part.name) != 1 or part.name in renamed:
            continue
        if (
            part.name == f"{node.name}_pre"
            and node.op == "activation"
            and (part.op in FUSED_ACTIVATION)
        ):
            op, merged = part.op, {**part.attrs, "activation": node.attrs["activation"]}
        elif (
            part.name == f"{node.name}_depthwise"
            and part.op == "depthwise_conv2d"
            and node.op == "conv2d"
            and tuple(node.attrs["kernel_size"]) == (1, 1)
            and not part.attrs["use_bias"]
        ):
            op, merged = "separable_conv2d", separable(part, node)
            weights[f"{node.name}/pointwise_kernel"] = weights.pop(f"{node.name}/kernel")
        elif (
            part.name == f"{node.name}_pooled"
            and node.op == "flatten"
            and part.op
            in (
                "global_avg_pool",
                "global_max_pool",
            )
        ):
            op, merged = part.op, {**part.attrs, "keepdims": False}
        else:
            continue
        by_name[node.name] = ImportedNode(node.name, op, merged, part.inputs)
        renamed[part.name] = node.name
        for key in [k for k in weights if k.split("/")[0] == part.name]:
            weights[f"{node.name}/{key.split('/', 1)[1]}"] = weights.pop(key)
    fused = [
        ImportedNode(n.name, n.op, n.attrs, tuple(renamed.get(s, s) for s in n.inputs))
        for n in (by_name[m.name] for m in nodes if m.name not in renamed)
    ]
    return fused, renamed


def renamed(
    nodes: list[ImportedNode], weights: dict[str, Any], renames: dict[str, str]
) -> list[ImportedNode]:
    """The nodes with those in `renames` (old -> new name) renamed, and their inputs and
    weights with them."""
    for key in [k for k in weights if k.split("/")[0] in renames]:
        old, param = key.split("/", 1)
        weights[f"{renames[old]}/{param}"] = weights.pop(key)
    return [
        ImportedNode(
            renames.get(n.name, n.name), n.op, n.attrs, tuple(renames.get(s, s) for s in n.inputs)
        )
        for n in nodes
    ]


def merged(
    nodes: list[ImportedNode], weights: dict[str, Any], renames: dict[str, str]
) -> tuple[list[ImportedNode], dict[str, str]]:
    """The nodes renamed, then with xgraph's own two-part nodes as one; and the old name of
    every node renamed or merged (-> its name now)."""
    nodes = renamed(nodes, weights, renames)
    nodes, fused = own_parts_fused(nodes, weights)
    return nodes, {**{old: fused.get(new, new) for old, new in renames.items()}, **fused}
