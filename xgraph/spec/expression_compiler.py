"""`${...}` expressions compiled: a checked tree turned into closures over the scope.

The expression language (`xgraph.spec.expressions`) parses each distinct expression once,
here: its depth and size are checked against the budgets, then every tree node becomes a
closure, so evaluating it again costs no parse. Only names, literals, arithmetic,
comparisons, `and`/`or`/`not`, `x if c else y`, `int()`, `round()` and `make_divisible()`
compile.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from xgraph.budgets import Budgets

# YAML spellings a spec author naturally writes inside ${...} too.
_YAML_CONSTANTS = {"true": True, "false": False, "null": None}

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}

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


class ExpressionError(ValueError):
    """An expression that does not parse, names an unknown parameter or fails to evaluate;
    `limit` names the budget it went over, if that is why."""

    def __init__(
        self, message: str, unknown_name: str | None = None, limit: str | None = None
    ) -> None:
        super().__init__(message)
        self.unknown_name = unknown_name
        self.limit = limit


class Limits(Protocol):
    """What compiled expressions check their values against (an `Evaluator`)."""

    budgets: Budgets
    max_length: int

    def integer(self, value: Any, source: str) -> Any: ...

    def sized(self, value: Any, source: str) -> Any: ...

    def too_long(self, source: str, kind: str = "characters") -> ExpressionError: ...


def short(text: str) -> str:
    """Source text for a message: long expressions are cut, not printed whole."""
    text = text.strip()
    return text if len(text) <= 80 else text[:77] + "..."


Function = Callable[[Mapping[str, Any]], Any]


class Compiled:
    """An expression ready to run: its closure, its source and its size in operations."""

    def __init__(self, text: str, function: Function, size: int) -> None:
        self.text = text
        self.function = function
        self.size = size


def compile_expression(source: str, evaluator: Limits) -> Compiled:
    text = source.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        if "too many nested" in str(exc):
            raise _too_deep(text, evaluator) from None
        raise ExpressionError(f"cannot parse expression '{short(text)}'") from None
    except (RecursionError, MemoryError):  # CPython's parser on thousands of `not` or `+`
        raise _too_deep(text, evaluator) from None
    size = _check_depth(tree.body, text, evaluator)
    return Compiled(short(text), _Compiler(evaluator, text).compile(tree.body), size)


def _too_deep(text: str, evaluator: Limits) -> ExpressionError:
    depth = evaluator.budgets.expression_depth
    return ExpressionError(
        f"'{short(text)}' nests deeper than {depth} levels", limit="expression_depth"
    )


def _check_depth(root: ast.AST, text: str, evaluator: Limits) -> int:
    """The number of nodes of the tree, once its depth is known to be within the budget
    (walked without recursion: the tree may be thousands of levels deep)."""
    limit = evaluator.budgets.expression_depth
    size = 0
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise _too_deep(text, evaluator)
        size += 1
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return size


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExpressionError(f"arithmetic needs numbers, got {short(repr(value))}")
    return value


def _whole(function: str, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExpressionError(f"{function}() needs a number, got {short(repr(value))}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ExpressionError(f"{function}() of {value!r} is not a whole number")
    return value


def make_divisible(v: Any, divisor: Any = 8, min_value: Any = None) -> int:
    """A channel count rounded as the MobileNets round a width multiplier's product (Keras's
    mobilenet_v2 `_make_divisible`): the nearest multiple of `divisor`, at least `min_value`
    (`divisor` if None), and never more than 10% below `v`."""
    value = _whole("make_divisible", v)
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 1:
        raise ExpressionError(f"make_divisible() needs a divisor of 1 or more, got {divisor!r}")
    if min_value is None:
        min_value = divisor
    elif isinstance(min_value, bool) or not isinstance(min_value, int):
        raise ExpressionError(f"make_divisible() needs a whole min_value, got {min_value!r}")
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class _Signature:
    """A function an expression may call: its parameters, the first `required` of them
    needed, passed by position or by name."""

    def __init__(
        self, apply: Callable[..., int | float], params: tuple[str, ...], required: int, usage: str
    ) -> None:
        self.apply, self.params, self.required, self.usage = apply, params, required, usage


def _larger(a: Any, b: Any) -> int | float:
    return max(_whole("max", a), _whole("max", b))


def _smaller(a: Any, b: Any) -> int | float:
    return min(_whole("min", a), _whole("min", b))


# The only calls allowed: numbers in, a number out (a whole one but for max and min).
_FUNCTIONS: dict[str, _Signature] = {
    "int": _Signature(lambda x: int(_whole("int", x)), ("x",), 1, "takes exactly one number"),
    "round": _Signature(lambda x: round(_whole("round", x)), ("x",), 1, "takes exactly one number"),
    "ceil": _Signature(
        lambda x: math.ceil(_whole("ceil", x)), ("x",), 1, "takes exactly one number"
    ),
    "max": _Signature(_larger, ("a", "b"), 2, "takes exactly two numbers"),
    "min": _Signature(_smaller, ("a", "b"), 2, "takes exactly two numbers"),
    "make_divisible": _Signature(
        make_divisible, ("v", "divisor", "min_value"), 1, "takes (v, divisor=8, min_value=None)"
    ),
}


class _Compiler:
    """Turns a checked expression tree into closures over the scope, one per tree node.

    Every construct the language refuses is refused here, before anything runs; what
    depends on the scope (unknown names, types) is checked when the closure runs.
    """

    def __init__(self, evaluator: Limits, text: str) -> None:
        self.evaluator = evaluator
        self.text = text

    def compile(self, node: ast.AST) -> Function:
        method = getattr(self, f"_{type(node).__name__.lower()}", None)
        function = method(node) if method is not None else None
        if function is None:
            raise ExpressionError(f"'{short(ast.unparse(node))}' is not allowed in an expression")
        return function

    def _constant(self, node: ast.Constant) -> Function | None:
        value = node.value
        if value is not None and not isinstance(value, int | float | str | bool):
            return None  # bytes, complex numbers, Ellipsis
        self.evaluator.integer(value, self.text)
        self.evaluator.sized(value, self.text)
        return lambda scope: value

    def _name(self, node: ast.Name) -> Function:
        name = node.id
        constant = _YAML_CONSTANTS.get(name, _MISSING)

        def lookup(scope: Mapping[str, Any]) -> Any:
            value = scope.get(name, _MISSING)
            if value is not _MISSING:
                return value
            if constant is not _MISSING:
                return constant
            raise ExpressionError(f"unknown parameter '{name}'", unknown_name=name)

        return lookup

    def _list(self, node: ast.List | ast.Tuple) -> Function:
        items = [self.compile(item) for item in node.elts]
        sized, text = self.evaluator.sized, self.text
        return lambda scope: sized([item(scope) for item in items], text)

    _tuple = _list

    def _unaryop(self, node: ast.UnaryOp) -> Function | None:
        operand = self.compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda scope: not operand(scope)
        if isinstance(node.op, ast.USub):
            return lambda scope: -_number(operand(scope))
        return None

    def _binop(self, node: ast.BinOp) -> Function | None:
        apply = _BINARY.get(type(node.op))
        if apply is None:
            return None
        left, right = self.compile(node.left), self.compile(node.right)
        evaluator, text = self.evaluator, self.text
        adds = isinstance(node.op, ast.Add)

        def binary(scope: Mapping[str, Any]) -> Any:
            a, b = left(scope), right(scope)
            if adds and isinstance(a, str) and isinstance(b, str):
                if len(a) + len(b) > evaluator.max_length:  # refused before it is made
                    raise evaluator.too_long(text)
                return a + b
            return evaluator.integer(apply(_number(a), _number(b)), text)

        return binary

    def _boolop(self, node: ast.BoolOp) -> Function:
        """Python's meaning: the deciding value, not a bool."""
        operands = [self.compile(value) for value in node.values]
        deciding = not isinstance(node.op, ast.And)  # `or` stops at a true value

        def boolean(scope: Mapping[str, Any]) -> Any:
            value = None
            for operand in operands:
                value = operand(scope)
                if bool(value) == deciding:
                    return value
            return value

        return boolean

    def _subscript(self, node: ast.Subscript) -> Function | None:
        if isinstance(node.slice, ast.Slice):
            return None
        container, index = self.compile(node.value), self.compile(node.slice)
        shown = short(ast.unparse(node))

        def subscript(scope: Mapping[str, Any]) -> Any:
            items, position = container(scope), index(scope)
            if not isinstance(items, list | str) or type(position) is not int:
                raise ExpressionError(f"'{shown}': only lists are indexed, by integers")
            if not -len(items) <= position < len(items):
                raise ExpressionError(f"'{shown}': index {position} is out of range")
            return items[position]

        return subscript

    def _compare(self, node: ast.Compare) -> Function | None:
        if not all(type(op) in _COMPARE for op in node.ops):
            return None
        first = self.compile(node.left)
        rest = [
            (_COMPARE[type(op)], self.compile(value))
            for op, value in zip(node.ops, node.comparators, strict=True)
        ]

        def compare(scope: Mapping[str, Any]) -> bool:
            left = first(scope)
            for test, comparator in rest:
                right = comparator(scope)
                if not test(left, right):
                    return False
                left = right
            return True

        return compare

    def _call(self, node: ast.Call) -> Function | None:
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            return None
        name, signature = node.func.id, _FUNCTIONS[node.func.id]
        evaluator, text, shown = self.evaluator, self.text, short(ast.unparse(node))
        arguments = self._arguments(node, name, signature, shown)

        def call(scope: Mapping[str, Any]) -> int | float:
            if name in scope:  # a parameter named `int` is not a function
                raise ExpressionError(f"'{shown}' is not allowed in an expression")
            values = {key: argument(scope) for key, argument in arguments.items()}
            return evaluator.integer(signature.apply(**values), text)

        return call

    def _arguments(
        self, node: ast.Call, name: str, signature: _Signature, shown: str
    ) -> dict[str, Function]:
        """The call's arguments by parameter name, each compiled; a wrong call is refused
        with the function's signature."""
        params = signature.params
        given = [(params[i] if i < len(params) else "", a) for i, a in enumerate(node.args)]
        given += [(keyword.arg or "", keyword.value) for keyword in node.keywords]
        names = [key for key, _ in given]
        if (
            any(isinstance(value, ast.Starred) for _, value in given)
            or not all(key in params for key in names)
            or len(set(names)) != len(names)
            or not set(params[: signature.required]) <= set(names)
            or (len(params) == 1 and node.keywords)
        ):
            raise ExpressionError(f"'{shown}': {name}() {signature.usage}")
        return {key: self.compile(value) for key, value in given}

    def _ifexp(self, node: ast.IfExp) -> Function:
        test, body, orelse = (
            self.compile(node.test),
            self.compile(node.body),
            self.compile(node.orelse),
        )
        return lambda scope: body(scope) if test(scope) else orelse(scope)


_MISSING = object()
