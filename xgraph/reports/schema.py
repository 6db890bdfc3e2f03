"""The JSON Schema of the spec language, generated from the pydantic models.

Nodes are described op by op (an `op` constant and that op's attributes), so an editor can
complete attribute names and check their values. Any value may also be a `${...}` expression.
"""

from __future__ import annotations

from typing import Any

from xgraph.ops import REGISTRY
from xgraph.spec.model import NodeItem, Spec
from xgraph.training.recipe import TrainingRecipe

EXPRESSION_SCHEMA = {"type": "string", "pattern": r"^\s*\$\{.*\}\s*$"}


def _allow_expressions(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [_expressions_inside(schema), {"$ref": "#/$defs/Expression"}]}


def _expressions_inside(schema: dict[str, Any]) -> dict[str, Any]:
    """The items of a list may be expressions too: `kernel_size: [3, "${k}"]`."""
    result = dict(schema)
    for key in ("anyOf", "oneOf"):
        if key in result:
            result[key] = [_expressions_inside(option) for option in result[key]]
    if "prefixItems" in result:
        result["prefixItems"] = [_allow_expressions(item) for item in result["prefixItems"]]
    if isinstance(result.get("items"), dict):
        result["items"] = _allow_expressions(result["items"])
    return result


def _node_schema(op: str, defs: dict[str, Any]) -> dict[str, Any]:
    opdef = REGISTRY[op]
    attrs = opdef.attrs.model_json_schema(ref_template="#/$defs/{model}")
    defs.update(attrs.pop("$defs", {}))
    common = NodeItem.model_json_schema(ref_template="#/$defs/{model}")["properties"]
    properties = {key: value for key, value in common.items() if key != "op"}
    properties["op"] = {"const": op, "description": opdef.summary}
    for name, schema in attrs.get("properties", {}).items():
        properties[name] = _allow_expressions(schema)
    return {
        "type": "object",
        "title": f"{op} node",
        "description": opdef.summary,
        "properties": properties,
        "required": ["op", *attrs.get("required", [])],
        "additionalProperties": False,
    }


def _training_schema(defs: dict[str, Any]) -> dict[str, Any]:
    """The `training:` section: every setting of the recipe (xgraph.training.recipe), each
    value possibly an expression; the optimizer and the schedule also as a bare name."""
    recipe = TrainingRecipe.model_json_schema(ref_template="#/$defs/{model}")
    for name, model in recipe.pop("$defs", {}).items():
        model["properties"] = {
            key: value if key == "name" else _allow_expressions(value)
            for key, value in model["properties"].items()
        }
        defs[name] = model
    properties = {}
    for key, value in recipe["properties"].items():
        if "oneOf" in value:  # optimizer, schedule: `optimizer: adam` is `{name: adam}`
            names = sorted(value.get("discriminator", {}).get("mapping", {}))
            value = {**value, "oneOf": [*value["oneOf"], {"enum": names}]}
        properties[key] = _allow_expressions(value)
    section = {
        "type": "object",
        "description": Spec.model_fields["training"].description,
        "properties": properties,
        "additionalProperties": False,
    }
    return {"anyOf": [section, {"type": "null"}]}


def spec_json_schema() -> dict[str, Any]:
    schema = Spec.model_json_schema(ref_template="#/$defs/{model}")
    defs = schema.setdefault("$defs", {})
    defs["Expression"] = EXPRESSION_SCHEMA
    schema["properties"]["training"] = _training_schema(defs)
    node_refs = []
    for op in REGISTRY:
        if op == "input":
            continue
        defs[f"Node_{op}"] = _node_schema(op, defs)
        node_refs.append({"$ref": f"#/$defs/Node_{op}"})
    defs["NodeItem"] = {"oneOf": node_refs, "description": NodeItem.__doc__}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "xgraph spec, version 1"
    return schema
