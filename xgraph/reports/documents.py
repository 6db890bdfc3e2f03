"""JSON Schemas of the documents the commands print with `--json`, so that scripts can rely
on them (`xgraph schema --document NAME`); the tests validate real output against them."""

from __future__ import annotations

from typing import Any

DRAFT = "https://json-schema.org/draft/2020-12/schema"

_COUNT = {"type": "integer", "minimum": 0}
_NAMES = {"type": "array", "items": {"type": "string"}}
_COUNTS = {
    "type": "object",
    "properties": {"trainable": _COUNT, "non_trainable": _COUNT},
    "required": ["trainable", "non_trainable"],
    "additionalProperties": False,
}


def _document(title: str, description: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "$schema": DRAFT,
        "title": title,
        "description": description,
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


SUMMARY = _document(
    "xgraph summary --json",
    "The analysed graph: totals, and every node in topological order.",
    {
        "name": {"type": "string", "description": "The spec's name."},
        "params": {"type": "object", "description": "The spec parameters' values, --set applied."},
        "inputs": {**_NAMES, "description": "The input nodes, in order."},
        "outputs": {**_NAMES, "description": "The output nodes, in order."},
        "total_params": _COUNT,
        "trainable_params": _COUNT,
        "non_trainable_params": {**_COUNT, "description": "BatchNorm's moving statistics."},
        "macs": {**_COUNT, "description": "Multiply-accumulates of one example."},
        "nodes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "op": {"type": "string"},
                    "inputs": _NAMES,
                    "output_shape": {
                        "type": "array",
                        "items": {"type": "integer", "minimum": 1},
                        "description": "(H, W, C) or (features,), batch excluded.",
                    },
                    "trainable_params": _COUNT,
                    "non_trainable_params": _COUNT,
                    "macs": _COUNT,
                },
                "required": [
                    "name",
                    "op",
                    "inputs",
                    "output_shape",
                    "trainable_params",
                    "non_trainable_params",
                    "macs",
                ],
                "additionalProperties": False,
            },
        },
    },
)

PARITY = _document(
    "xgraph parity --json",
    "Parameter parity: each backend's counts read off its built model, against the analysis.",
    {
        "spec": {"type": "string"},
        "backends": _NAMES,
        "agrees": {"type": "boolean", "description": "Every node agrees in every backend."},
        "totals": {
            "type": "object",
            "description": "'analytic' and each backend: the model's totals.",
            "additionalProperties": _COUNTS,
        },
        "differences": {
            "type": "array",
            "description": "The nodes that differ: the analytic counts and each backend's.",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "op": {"type": "string"},
                    "analytic": _COUNTS,
                },
                "required": ["name", "op", "analytic"],
                "additionalProperties": _COUNTS,
            },
        },
    },
)

PARITY_NUMERIC = _document(
    "xgraph parity --numeric --json",
    "Numeric parity: every node's relative error, max|b - a| / max|a|, the first backend "
    "being the reference.",
    {
        "spec": {"type": "string"},
        "backends": {**_NAMES, "minItems": 2, "maxItems": 2},
        "tolerance": {"type": "number"},
        "agrees": {"type": "boolean"},
        "first_divergence": {
            "type": ["string", "null"],
            "description": "The first node, in topological order, beyond the tolerance.",
        },
        "max_relative_error": {"type": "number"},
        "nodes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "op": {"type": "string"},
                    "relative_error": {"type": "number"},
                },
                "required": ["name", "op", "relative_error"],
                "additionalProperties": False,
            },
        },
    },
)

OPS = {
    "$schema": DRAFT,
    "title": "xgraph ops --json",
    "description": "Every registered op, built-in or from a plugin, by name.",
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "summary": {"type": "string"},
            "origin": {
                "type": "string",
                "description": "The package the op comes from: 'xgraph' for built-in ops.",
            },
            "backends": {**_NAMES, "description": "The backends that lower the op."},
            "inputs": {
                "type": "object",
                "properties": {"min": _COUNT, "max": {"type": ["integer", "null"]}},
                "required": ["min", "max"],
                "additionalProperties": False,
            },
            "attributes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "required": {"type": "boolean"},
                        "default": {"description": "Absent when the attribute is required."},
                    },
                    "required": ["name", "required"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["name", "summary", "origin", "backends", "inputs", "attributes"],
        "additionalProperties": False,
    },
}

_ONE_PAIR = {key: value for key, value in PARITY_NUMERIC.items() if key != "$schema"}
PARITY_NUMERIC_ANY = {
    "$schema": DRAFT,
    "title": "xgraph parity --numeric --json",
    "description": "One report for two backends; a list of them, one per pair, for more.",
    "oneOf": [_ONE_PAIR, {"type": "array", "items": _ONE_PAIR, "minItems": 3}],
}

DOCUMENT_SCHEMAS: dict[str, dict[str, Any]] = {
    "summary": SUMMARY,
    "parity": PARITY,
    "parity-numeric": PARITY_NUMERIC_ANY,
    "ops": OPS,
}
