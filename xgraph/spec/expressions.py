"""`${...}` expressions in spec values: a small, safe subset of Python expression syntax.

A value that is exactly one `${expr}` takes the expression's type (`${classes}` is an int); a
`${expr}` inside other text is formatted into it (`block${i + 5}_sepconv1`). Only names,
literals, arithmetic, comparisons, `and`/`or`/`not` and `x if c else y` are allowed, so a spec
can never run code. Two functions round numbers: `int(x)` truncates toward zero (as
`int(filters * alpha)` in Keras's MobileNet) and `round(x)` rounds to the nearest whole number,
halves to even (as Python does); both give an int.

Each distinct expression is parsed once and compiled into nested closures, so a block
repeated thousands of times costs a dictionary lookup per expression, not a parse. Every
evaluation runs under the budgets (`xgraph.budgets`): its operations count as expansion
steps, and no string, list or integer it makes may outgrow its limit, so a few lines cannot
ask for gigabytes or hours.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from xgraph.budgets import Budgets, active_budgets

EXPRESSION = re.compile(r"\$\{([^}]*)\}")

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


class Evaluator:
    """Evaluates expressions under one set of budgets, counting the operations it runs.

    One evaluator serves one compilation: it caches each expression's compiled form, and
    `steps` is shared with the expander, which adds the items it expands.
    """

    def __init__(self, budgets: Budgets | None = None) -> None:
        budgets = active_budgets(budgets)
        self.budgets = budgets
        self.max_length = budgets.value_length
        self.max_integer = 10**budgets.integer_digits
        self.max_steps = budgets.expansion_steps
        self.steps = 0
        self._compiled: dict[str, _Compiled] = {}
        self._templates: dict[str, Function] = {}

    # --- budgets -------------------------------------------------------------------------

    def charge(self, steps: int) -> None:
        """Count `steps` units of work; going over the budget is an ExpressionError."""
        self.steps += steps
        if self.steps > self.max_steps:
            raise ExpressionError(
                f"expanding the spec takes more than {self.max_steps:,} steps",
                limit="expansion_steps",
            )

    def integer(self, value: Any, source: str) -> Any:
        if type(value) is int and not -self.max_integer < value < self.max_integer:
            raise ExpressionError(
                f"'{_short(source)}' makes an integer of more than "
                f"{self.budgets.integer_digits} digits",
                limit="integer_digits",
            )
        return value

    def sized(self, value: Any, source: str) -> Any:
        if isinstance(value, str | list) and len(value) > self.max_length:
            raise self.too_long(source, "characters" if isinstance(value, str) else "items")
        return value

    def too_long(self, source: str, kind: str = "characters") -> ExpressionError:
        return ExpressionError(
            f"'{_short(source)}' makes a value of more than {self.max_length:,} {kind}",
            limit="value_length",
        )

    # --- evaluation ----------------------------------------------------------------------

    def evaluate(self, source: str, scope: Mapping[str, Any]) -> Any:
        """Evaluate one expression (the text between `${` and `}`) in `scope`."""
        return self._run(self._expression(source), scope)

    def substitute(self, value: str, scope: Mapping[str, Any]) -> Any:
        """Resolve every `${...}` in `value`; a value that is one whole expression keeps its
        type."""
        render = self._templates.get(value)
        if render is None:
            render = self._templates[value] = self._template(value)
        return render(scope)

    def resolve(self, value: Any, scope: Mapping[str, Any]) -> Any:
        """Resolve expressions anywhere inside a value made of lists, dicts and scalars."""
        if isinstance(value, str):
            return self.substitute(value, scope) if "${" in value else value
        if isinstance(value, list):
            return [self.resolve(item, scope) for item in value]
        if isinstance(value, dict):
            return {key: self.resolve(item, scope) for key, item in value.items()}
        return value

    # --- compiled forms ------------------------------------------------------------------

    def _expression(self, source: str) -> _Compiled:
        compiled = self._compiled.get(source)
        if compiled is None:
            compiled = self._compiled[source] = _compile(source, self)
        return compiled

    def _run(self, compiled: _Compiled, scope: Mapping[str, Any]) -> Any:
        self.steps += compiled.size
        if self.steps > self.max_steps:
            self.charge(0)
        try:
            return compiled.function(scope)
        except ZeroDivisionError:
            raise ExpressionError(f"division by zero in '{compiled.text}'") from None
        except TypeError:  # comparing or combining values of different kinds: "avg" < 3
            raise ExpressionError(f"'{compiled.text}' mixes values of different types") from None
        except OverflowError:  # a float out of range, or an integer too large for a float
            raise ExpressionError(f"'{compiled.text}' gives a number out of range") from None

    def _template(self, value: str) -> Function:
        """A string with expressions, as one function of the scope: the text is split once."""
        whole = EXPRESSION.fullmatch(value.strip())
        if whole:
            compiled = self._expression(whole.group(1))
            return lambda scope: self._run(compiled, scope)
        parts = EXPRESSION.split(value)
        texts = parts[::2]
        if any("${" in text for text in texts):
            raise ExpressionError(f"unterminated '${{' in '{_short(value)}'")
        expressions = [self._expression(source) for source in parts[1::2]]
        limit, run = self.max_length, self._run
        fixed = sum(len(text) for text in texts)
        if len(expressions) == 1:  # the usual case, such as "${name}_conv"
            (compiled,), (before, after) = expressions, texts

            def render_one(scope: Mapping[str, Any]) -> str:
                result = run(compiled, scope)
                piece = result if type(result) is str else _as_text(result, limit)
                if fixed + len(piece) > limit:
                    raise self.too_long(value)
                return before + piece + after

            return render_one

        def render(scope: Mapping[str, Any]) -> str:
            pieces, length = [texts[0]], fixed
            for compiled, text in zip(expressions, texts[1:], strict=True):
                piece = _as_text(run(compiled, scope), limit)
                length += len(piece)
                if length > limit:  # refused before the whole string is made
                    raise self.too_long(value)
                pieces += (piece, text)
            return "".join(pieces)

        return render


def _short(text: str) -> str:
    """Source text for a message: long expressions are cut, not printed whole."""
    text = text.strip()
    return text if len(text) <= 80 else text[:77] + "..."


def _as_text(value: Any, limit: int) -> str:
    """A value formatted into a string; bounded, since a list of lists prints far longer
    than it is written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list) and _text_size(value, limit) > limit:
        raise ExpressionError(
            f"a list formatted into text makes more than {limit:,} characters",
            limit="value_length",
        )
    return str(value)


def _text_size(value: Any, limit: int) -> int:
    """About how long `str(value)` is, counting no further than `limit`."""
    if not isinstance(value, list):
        return len(value) + 2 if isinstance(value, str) else 24
    total = 2
    for item in value:
        total += _text_size(item, limit - total) + 2
        if total > limit:
            break
    return total


# --- compilation ---------------------------------------------------------------------------

Function = Callable[[Mapping[str, Any]], Any]


class _Compiled:
    """An expression ready to run: its closure, its source and its size in operations."""

    def __init__(self, text: str, function: Function, size: int) -> None:
        self.text = text
        self.function = function
        self.size = size


def _compile(source: str, evaluator: Evaluator) -> _Compiled:
    text = source.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        if "too many nested" in str(exc):
            raise _too_deep(text, evaluator) from None
        raise ExpressionError(f"cannot parse expression '{_short(text)}'") from None
    except (RecursionError, MemoryError):  # CPython's parser on thousands of `not` or `+`
        raise _too_deep(text, evaluator) from None
    size = _check_depth(tree.body, text, evaluator)
    return _Compiled(_short(text), _Compiler(evaluator, text).compile(tree.body), size)


def _too_deep(text: str, evaluator: Evaluator) -> ExpressionError:
    depth = evaluator.budgets.expression_depth
    return ExpressionError(
        f"'{_short(text)}' nests deeper than {depth} levels", limit="expression_depth"
    )


def _check_depth(root: ast.AST, text: str, evaluator: Evaluator) -> int:
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
        raise ExpressionError(f"arithmetic needs numbers, got {_short(repr(value))}")
    return value


def _whole(function: str, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExpressionError(f"{function}() needs a number, got {_short(repr(value))}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ExpressionError(f"{function}() of {value!r} is not a whole number")
    return value


# The only calls allowed: one positional number in, a whole number out.
_FUNCTIONS: dict[str, Callable[[Any], int]] = {
    "int": lambda value: int(_whole("int", value)),
    "round": lambda value: round(_whole("round", value)),
}


class _Compiler:
    """Turns a checked expression tree into closures over the scope, one per tree node.

    Every construct the language refuses is refused here, before anything runs; what
    depends on the scope (unknown names, types) is checked when the closure runs.
    """

    def __init__(self, evaluator: Evaluator, text: str) -> None:
        self.evaluator = evaluator
        self.text = text

    def compile(self, node: ast.AST) -> Function:
        method = getattr(self, f"_{type(node).__name__.lower()}", None)
        function = method(node) if method is not None else None
        if function is None:
            raise ExpressionError(f"'{_short(ast.unparse(node))}' is not allowed in an expression")
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
        shown = _short(ast.unparse(node))

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
        name = node.func.id
        if len(node.args) != 1 or node.keywords or isinstance(node.args[0], ast.Starred):
            raise ExpressionError(
                f"'{_short(ast.unparse(node))}': {name}() takes exactly one number"
            )
        argument, function = self.compile(node.args[0]), _FUNCTIONS[name]
        evaluator, text, shown = self.evaluator, self.text, _short(ast.unparse(node))

        def call(scope: Mapping[str, Any]) -> int:
            if name in scope:  # a parameter named `int` is not a function
                raise ExpressionError(f"'{shown}' is not allowed in an expression")
            return evaluator.integer(function(argument(scope)), text)

        return call

    def _ifexp(self, node: ast.IfExp) -> Function:
        test, body, orelse = (
            self.compile(node.test),
            self.compile(node.body),
            self.compile(node.orelse),
        )
        return lambda scope: body(scope) if test(scope) else orelse(scope)


_MISSING = object()


# --- module-level functions, for one-off use ---------------------------------------------


def has_expression(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def evaluate(source: str, scope: Mapping[str, Any]) -> Any:
    """Evaluate one expression (the text between `${` and `}`) in `scope`, default budgets."""
    return Evaluator().evaluate(source, scope)


def substitute(value: str, scope: Mapping[str, Any]) -> Any:
    """Resolve every `${...}` in `value`, default budgets."""
    return Evaluator().substitute(value, scope)


def resolve(value: Any, scope: Mapping[str, Any]) -> Any:
    """Resolve expressions anywhere inside a value, default budgets."""
    return Evaluator().resolve(value, scope)
