"""`${...}` expressions in spec values: a small, safe subset of Python expression syntax.

A value that is exactly one `${expr}` takes the expression's type (`${classes}` is an int); a
`${expr}` inside other text is formatted into it (`block${i + 5}_sepconv1`). Only names,
literals, arithmetic, comparisons, `and`/`or`/`not` and `x if c else y` are allowed, so a spec
can never run code. Three functions round numbers: `int(x)` truncates toward zero (as
`int(filters * alpha)` in Keras's MobileNet), `round(x)` rounds to the nearest whole number,
halves to even (as Python does), and `make_divisible(v, divisor=8, min_value=None)` rounds a
channel count as MobileNetV2 rounds its width multiplier's; all give an int.

Each distinct expression is parsed once and compiled into nested closures, so a block
repeated thousands of times costs a dictionary lookup per expression, not a parse. Every
evaluation runs under the budgets (`xgraph.budgets`): its operations count as expansion
steps, and no string, list or integer it makes may outgrow its limit, so a few lines cannot
ask for gigabytes or hours.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

from xgraph.budgets import Budgets, active_budgets
from xgraph.spec.expression_compiler import (
    Compiled,
    ExpressionError,
    Function,
    compile_expression,
    short,
)

EXPRESSION = re.compile(r"\$\{([^}]*)\}")

__all__ = [
    "EXPRESSION",
    "Evaluator",
    "ExpressionError",
    "direct_name",
    "evaluate",
    "has_expression",
    "names_in",
    "resolve",
    "substitute",
]


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
        self._compiled: dict[str, Compiled] = {}
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
                f"'{short(source)}' makes an integer of more than "
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
            f"'{short(source)}' makes a value of more than {self.max_length:,} {kind}",
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

    def _expression(self, source: str) -> Compiled:
        compiled = self._compiled.get(source)
        if compiled is None:
            compiled = self._compiled[source] = compile_expression(source, self)
        return compiled

    def _run(self, compiled: Compiled, scope: Mapping[str, Any]) -> Any:
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
            raise ExpressionError(f"unterminated '${{' in '{short(value)}'")
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


_WHOLE_NAME = re.compile(r"\$\{\s*([A-Za-z_]\w*)\s*\}")


def direct_name(value: Any) -> str | None:
    """The name a value is exactly (`${classes}` -> classes), else None: such a value is the
    parameter itself, which code generation may keep as an argument."""
    if type(value) is not str:
        return None
    match = _WHOLE_NAME.fullmatch(value.strip())
    return match.group(1) if match else None


def names_in(value: str) -> set[str]:
    """Every name the `${...}` expressions of `value` read; an expression that does not
    parse reads, as far as anyone can tell, every name (`*`)."""
    found: set[str] = set()
    for expression in EXPRESSION.findall(value):
        try:
            tree = ast.parse(expression.strip(), mode="eval")
        except SyntaxError:
            return {"*"}
        found.update(node.id for node in ast.walk(tree) if isinstance(node, ast.Name))
    return found
