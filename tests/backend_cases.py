"""One-op graphs for every op in the registry, shared by the backend tests.

A new op without a case here fails `test_every_op_has_a_backend_case`.
"""

from __future__ import annotations

from typing import Any

import yaml

# op -> list of (case id, input shapes, attributes)
OP_CASES: dict[str, list[tuple[str, list[list[int]], dict[str, Any]]]] = {
    "input": [("identity", [[5, 5, 3]], {})],
    "conv2d": [
        ("valid", [[9, 9, 3]], {"filters": 4, "kernel_size": 3}),
        (
            "same_strided_asymmetric",
            [[8, 8, 3]],
            {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu"},
        ),
        (
            "explicit_padding",
            [[7, 7, 2]],
            {"filters": 3, "kernel_size": [3, 2], "padding": [[1, 0], [2, 1]], "use_bias": False},
        ),
        (
            "dilated_same",
            [[9, 9, 2]],
            {"filters": 3, "kernel_size": 3, "dilation_rate": 2, "padding": "same"},
        ),
    ],
    "depthwise_conv2d": [
        (
            "multiplier",
            [[8, 8, 3]],
            {"kernel_size": 3, "depth_multiplier": 2, "padding": "same", "strides": 2},
        ),
    ],
    "separable_conv2d": [
        (
            "xception_like",
            [[9, 9, 4]],
            {"filters": 6, "kernel_size": 3, "padding": "same", "use_bias": False},
        ),
        (
            "multiplier_bias",
            [[8, 8, 3]],
            {
                "filters": 5,
                "kernel_size": 3,
                "depth_multiplier": 2,
                "strides": 2,
                "padding": "same",
            },
        ),
    ],
    "batch_norm": [
        ("default", [[5, 5, 4]], {}),
        ("no_center", [[5, 5, 4]], {"center": False, "epsilon": 0.01}),
        ("features", [[6]], {"scale": False}),
    ],
    "activation": [
        (name, [[4, 4, 3]], {"activation": name})
        for name in (
            "relu",
            "relu6",
            "sigmoid",
            "hard_sigmoid",
            "tanh",
            "softmax",
            "swish",
            "linear",
        )
    ],
    "max_pool2d": [
        ("same_asymmetric", [[74, 74, 2]], {"pool_size": 3, "strides": 2, "padding": "same"}),
        ("valid_default_strides", [[8, 8, 2]], {}),
    ],
    "avg_pool2d": [
        ("same_asymmetric", [[8, 8, 2]], {"pool_size": 3, "strides": 2, "padding": "same"}),
        ("same_symmetric", [[7, 7, 2]], {"pool_size": 3, "strides": 1, "padding": "same"}),
        ("valid", [[8, 8, 2]], {"pool_size": 2}),
    ],
    "global_avg_pool": [("flat", [[5, 5, 3]], {}), ("keepdims", [[5, 5, 3]], {"keepdims": True})],
    "global_max_pool": [("flat", [[5, 5, 3]], {}), ("keepdims", [[5, 5, 3]], {"keepdims": True})],
    "dense": [
        ("features", [[7]], {"units": 4, "activation": "softmax"}),
        ("on_channels", [[3, 3, 5]], {"units": 2, "use_bias": False}),
    ],
    "flatten": [("image", [[3, 4, 5]], {})],
    "dropout": [("rate", [[4, 4, 3]], {"rate": 0.5})],
    "add": [("three", [[4, 4, 3], [4, 4, 3], [4, 4, 3]], {})],
    "concat": [
        ("channels", [[4, 4, 3], [4, 4, 2]], {}),
        ("height", [[4, 4, 3], [2, 4, 3]], {"axis": 0}),
    ],
    "zero_pad2d": [("asymmetric", [[4, 4, 3]], {"padding": [[1, 0], [2, 3]]})],
}


def case_ids() -> list[tuple[str, str]]:
    return [(op, case) for op, cases in OP_CASES.items() for case, _, _ in cases]


def one_op_spec(op: str, case: str) -> str:
    """A spec whose only computing node is one `op` node (the input op: just an input)."""
    _, shapes, attrs = next(c for c in OP_CASES[op] if c[0] == case)
    inputs = [{"name": f"x{i}", "shape": shape} for i, shape in enumerate(shapes)]
    spec: dict[str, Any] = {"xgraph": 1, "name": f"{op}_{case}", "inputs": inputs}
    if op == "input":
        spec["nodes"] = [{"name": "out", "op": "activation", "activation": "linear"}]
    else:
        node = {"name": "out", "op": op, **attrs}
        if len(shapes) > 1:
            node["inputs"] = [entry["name"] for entry in inputs]
        spec["nodes"] = [node]
    return yaml.safe_dump(spec, sort_keys=False)
