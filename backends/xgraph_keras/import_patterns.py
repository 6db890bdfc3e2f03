"""Layer patterns of Keras files that are one op of the spec: MobileNetV3's hard sigmoid,
`ReLU(6.)(x + 3.) * (1. / 6.)`, two operations around a ReLU layer in the file, one
`activation: hard_sigmoid` node named as that ReLU (as specs/mobilenet_v3.yaml writes it)."""

from __future__ import annotations

from collections import defaultdict

from xgraph.importing.model import ImportedNode


def _is_rescaling(node: ImportedNode, scale: float, offset: float) -> bool:
    return (
        node.op == "rescaling"
        and abs(float(node.attrs["scale"]) - scale) < 1e-12
        and abs(float(node.attrs["offset"]) - offset) < 1e-12
    )


def fused(nodes: list[ImportedNode], outputs: list[str]) -> tuple[list[ImportedNode], list[str]]:
    """`nodes` with each hard sigmoid's three nodes as one."""
    by_name = {node.name: node for node in nodes}
    consumers: dict[str, list[str]] = defaultdict(list)
    for node in nodes:
        for source in node.inputs:
            consumers[source].append(node.name)
    renamed: dict[str, str] = {}
    dropped: set[str] = set()
    for node in nodes:
        if node.op != "activation" or node.attrs.get("activation") != "relu6":
            continue
        if len(node.inputs) != 1 or len(consumers[node.name]) != 1:
            continue
        before = by_name[node.inputs[0]]
        after = by_name[consumers[node.name][0]]
        if not (
            _is_rescaling(before, 1.0, 3.0)
            and len(consumers[before.name]) == 1
            and _is_rescaling(after, 1.0 / 6.0, 0.0)
            and after.name not in outputs
        ):
            continue
        by_name[node.name] = ImportedNode(
            node.name, "activation", {"activation": "hard_sigmoid"}, before.inputs, node.automatic
        )
        dropped |= {before.name, after.name}
        renamed[after.name] = node.name
    result = []
    for original in nodes:
        if original.name in dropped:
            continue
        node = by_name[original.name]
        inputs = tuple(renamed.get(source, source) for source in node.inputs)
        result.append(ImportedNode(node.name, node.op, node.attrs, inputs, node.automatic))
    return result, [renamed.get(name, name) for name in outputs]
