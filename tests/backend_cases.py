"""One-op graphs for every op in the registry, built-in and plugin, from each op's own
examples (`OpDef.examples`): a new op is covered by the backend tests by defining them."""

from __future__ import annotations

from typing import Any

import yaml

from xgraph.ops import REGISTRY, OpExample


def case_ids() -> list[tuple[str, str]]:
    """(op, example id) for every example of every registered op."""
    return [(op, example.id) for op in sorted(REGISTRY) for example in REGISTRY[op].examples]


def example(op: str, case: str) -> OpExample:
    return next(e for e in REGISTRY[op].examples if e.id == case)


def one_op_spec(op: str, case: str) -> str:
    """A spec whose only computing node is one `op` node named `out` (the input op: an
    input and a linear activation)."""
    shapes = [list(shape) for shape in example(op, case).inputs]
    inputs = [{"name": f"x{i}", "shape": shape} for i, shape in enumerate(shapes)]
    spec: dict[str, Any] = {"xgraph": 1, "name": f"{op}_{case}", "inputs": inputs}
    if op == "input":
        spec["nodes"] = [{"name": "out", "op": "activation", "activation": "linear"}]
    else:
        node = {"name": "out", "op": op, **example(op, case).attrs}
        if len(shapes) > 1:
            node["inputs"] = [entry["name"] for entry in inputs]
        spec["nodes"] = [node]
    return yaml.safe_dump(spec, sort_keys=False)
