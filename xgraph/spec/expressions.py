"""`${...}` expressions in spec values: a small, safe subset of Python expression syntax.

A value that is exactly one `${expr}` takes the expression's type (`${classes}` is an int); a
`${expr}` inside other text is formatted into it (`block${i + 5}_sepconv1`). Only names,
literals, arithmetic, comparisons, `and`/`or`/`not` and `x if c else y` are allowed, so a spec
can never run code. Two functions round numbers: `int(x)` truncates toward zero (as
`int(filters * alpha)` in Keras's MobileNet) and `round(x)` rounds to the nearest whole number,
halves to even (as Python does); both give an int.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

EXPRESSION = re.compile(r"\$\{([^}]*)\}")

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
# YAML spellings a spec author naturally writes inside ${...} too.
_YAML_CONSTANTS = {"true": True, "false": False, "null": None}

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


def _whole(function: str, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExpressionError(f"{function}() needs a number, got {value!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ExpressionError(f"{function}() of {value!r} is not a whole number")
    return value


def _to_int(value: Any) -> int:
    return int(_whole("int", value))


def _round(value: Any) -> int:
    return round(_whole("round", value))


# The only calls allowed: one positional number in, a whole number out.
_FUNCTIONS: dict[str, Callable[[Any], int]] = {"int": _to_int, "round": _round}


class ExpressionError(ValueError):
    """An expression that does not parse, names an unknown parameter or fails to evaluate."""

    def __init__(self, message: str, unknown_name: str | None = None) -> None:
        super().__init__(message)
        self.unknown_name = unknown_name


def has_expression(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def _evaluate(node: ast.AST, scope: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, scope)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str | bool):
        return node.value
    if isinstance(node, ast.Constant) and node.value is None:
        return None
    if isinstance(node, ast.Name):
        if node.id not in scope and node.id in _YAML_CONSTANTS:
            return _YAML_CONSTANTS[node.id]
        if node.id not in scope:
            raise ExpressionError(f"unknown parameter '{node.id}'", unknown_name=node.id)
        return scope[node.id]
    if isinstance(node, ast.List | ast.Tuple):
        return [_evaluate(item, scope) for item in node.elts]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _evaluate(node.operand, scope)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_number(_evaluate(node.operand, scope))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left, scope), _evaluate(node.right, scope)
        if isinstance(node.op, ast.Add) and isinstance(left, str) and isinstance(right, str):
            return left + right
        return _BINARY[type(node.op)](_number(left), _number(right))
    if isinstance(node, ast.BoolOp):  # Python's meaning: the deciding value, not a bool
        value = None
        for operand in node.values:
            value = _evaluate(operand, scope)
            if bool(value) != isinstance(node.op, ast.And):
                return value
        return value
    if isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Slice):
        container, index = _evaluate(node.value, scope), _evaluate(node.slice, scope)
        if not isinstance(container, list | str) or not isinstance(index, int):
            raise ExpressionError(f"'{ast.unparse(node)}': only lists are indexed, by integers")
        if not -len(container) <= index < len(container):
            raise ExpressionError(f"'{ast.unparse(node)}': index {index} is out of range")
        return container[index]
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        left = _evaluate(node.left, scope)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(comparator, scope)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and node.func.id not in scope
    ):
        if len(node.args) != 1 or node.keywords or isinstance(node.args[0], ast.Starred):
            raise ExpressionError(
                f"'{ast.unparse(node)}': {node.func.id}() takes exactly one number"
            )
        return _FUNCTIONS[node.func.id](_evaluate(node.args[0], scope))
    if isinstance(node, ast.IfExp):
        branch = node.body if _evaluate(node.test, scope) else node.orelse
        return _evaluate(branch, scope)
    raise ExpressionError(f"'{ast.unparse(node)}' is not allowed in an expression")


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExpressionError(f"arithmetic needs numbers, got {value!r}")
    return value


def evaluate(source: str, scope: Mapping[str, Any]) -> Any:
    """Evaluate one expression (the text between `${` and `}`) in `scope`."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError:
        raise ExpressionError(f"cannot parse expression '{source.strip()}'") from None
    try:
        return _evaluate(tree, scope)
    except ZeroDivisionError:
        raise ExpressionError(f"division by zero in '{source.strip()}'") from None
    except TypeError:  # comparing or combining values of different kinds: "avg" < 3
        raise ExpressionError(f"'{source.strip()}' mixes values of different types") from None


def substitute(value: str, scope: Mapping[str, Any]) -> Any:
    """Resolve every `${...}` in `value`; a value that is one whole expression keeps its type."""
    whole = EXPRESSION.fullmatch(value.strip())
    if whole:
        return evaluate(whole.group(1), scope)
    if "${" in EXPRESSION.sub("", value):
        raise ExpressionError(f"unterminated '${{' in '{value}'")
    return EXPRESSION.sub(lambda m: _as_text(evaluate(m.group(1), scope)), value)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def resolve(value: Any, scope: Mapping[str, Any]) -> Any:
    """Resolve expressions anywhere inside a value made of lists, dicts and scalars."""
    if isinstance(value, str):
        return substitute(value, scope) if "${" in value else value
    if isinstance(value, list):
        return [resolve(item, scope) for item in value]
    if isinstance(value, dict):
        return {key: resolve(item, scope) for key, item in value.items()}
    return value
