"""Python source for values and calls, as ruff formats it: literals, arguments that differ
from a class's defaults, and calls split over lines at the line length asked for."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LINE_LENGTH = 88  # ruff's default: generated code is formatted for it unless told otherwise
# Window arguments both frameworks take as an int or a pair: (3, 3) is printed as 3.
PAIRS = {"kernel_size", "stride", "padding", "dilation", "strides", "pool_size", "dilation_rate"}


@dataclass(frozen=True)
class Code:
    """Python source that stands for a value: a parameter, a loop variable, an f-string."""

    text: str


def python_literal(value: Any) -> str:
    """A value as Python source, strings in double quotes as ruff formats them."""
    if isinstance(value, Code):
        return value.text
    if isinstance(value, str):
        text = repr(value)
        if text.startswith("'") and '"' not in value:
            text = '"' + text[1:-1].replace("\\'", "'") + '"'
        return text
    if isinstance(value, tuple):
        items = ", ".join(python_literal(v) for v in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    if isinstance(value, list):
        return "[" + ", ".join(python_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{python_literal(k)}: {python_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    if isinstance(value, float) and value != value:
        return 'float("nan")'
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return 'float("inf")' if value > 0 else '-float("inf")'
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    raise TypeError(f"cannot print {type(value).__name__} {value!r} as a Python literal")


def plain(key: str, value: Any) -> Any:
    """(3, 3) as 3 for the window arguments both frameworks take as an int or a pair; a
    pair of pairs (((0, 1), (0, 1)): top/bottom and left/right amounts) stays as it is."""
    if (
        key in PAIRS
        and isinstance(value, tuple | list)
        and len(set(value)) == 1
        and all(isinstance(item, int) and not isinstance(item, bool) for item in value)
    ):
        return value[0]
    return value


def annotation(values: Iterable[Any]) -> str:
    """The type annotation of a parameter that takes `values` (already collapsed by
    `plain`): `int`, `tuple[int, int]`, or their union in the order first met."""

    def one(value: Any) -> str:
        if isinstance(value, tuple):
            return f"tuple[{', '.join(map(one, value))}]" if value else "tuple[()]"
        if isinstance(value, list):
            return f"list[{' | '.join(dict.fromkeys(map(one, value))) or 'int'}]"
        return "None" if value is None else type(value).__name__

    return " | ".join(dict.fromkeys(one(value) for value in values))


def _signature(cls: Any) -> list[inspect.Parameter]:
    return [
        p
        for p in inspect.signature(cls).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in ("device", "dtype")
    ]


def _is_default(param: inspect.Parameter, value: Any) -> bool:
    if param.default is param.empty or isinstance(value, Code):
        return False
    if value == "linear" and param.name == "activation" and param.default is None:
        return True  # Keras's activation=None is the identity, as "linear" is
    return python_literal(value) == python_literal(plain(param.name, param.default))


def arguments(cls: Any, kwargs: Mapping[str, Any]) -> list[str]:
    """Required arguments by position, the others by keyword where they differ from the
    class's default."""
    args = []
    positional = True
    params = {p.name: p for p in _signature(cls)}
    for name, param in params.items():
        if name not in kwargs:
            positional = positional and param.default is not param.empty
            continue
        value = plain(name, kwargs[name])
        if _is_default(param, value):
            positional = False
            continue
        if positional and param.default is param.empty:
            args.append(python_literal(value))
        else:
            positional = False
            args.append(f"{name}={python_literal(value)}")
    args.extend(
        f"{key}={python_literal(plain(key, value))}"
        for key, value in kwargs.items()
        if key not in params
    )
    return args


Arg = str | tuple[str, list[Any]]  # source text, or a nested call (head, arguments)


def _flat(arg: Arg) -> str:
    return arg if isinstance(arg, str) else f"{arg[0]}({', '.join(map(_flat, arg[1]))})"


def format_call(
    indent: int, head: str, args: Sequence[Arg], tail: str = "", width: int = LINE_LENGTH
) -> list[str]:
    """`head(args)tail` as ruff formats it at `indent` for lines of at most `width` columns:
    on one line, else the arguments on one line of their own, else one per line."""
    pad = " " * indent
    flat = ", ".join(map(_flat, args))
    if len(one := f"{pad}{head}({flat}){tail}") <= width:
        return [one]
    if tail.startswith("(") and tail.endswith(")") and len(f"{pad}{head}({flat})(") <= width:
        return [f"{pad}{head}({flat})(", f"{pad}    {tail[1:-1]}", f"{pad})"]  # `(x)` split
    if len(inner := " " * (indent + 4) + flat) <= width:
        return [f"{pad}{head}(", inner, f"{pad}){tail}"]
    lines = [f"{pad}{head}("]
    for arg in args:
        if isinstance(arg, tuple) and len(" " * (indent + 4) + _flat(arg) + ",") > width:
            lines += format_call(indent + 4, arg[0], arg[1], ",", width)
        else:
            lines.append(" " * (indent + 4) + _flat(arg) + ",")
    return [*lines, f"{pad}){tail}"]


def assign_call(
    indent: int, output: str, carry: str, head: str, args: Sequence[Arg], width: int
) -> list[str]:
    """`output = head(args)`, or with a carry `x, previous = head(args), x` (the old value
    of `output` moving to `carry`), as ruff formats it."""
    if not carry:
        return format_call(indent, f"{output} = {head}", args, "", width)
    one = format_call(indent, f"{output}, {carry} = {head}", args, f", {output}", width)
    if len(one) == 1:
        return one
    pad = " " * indent
    inner = format_call(indent + 4, head, args, ",", width)
    return [f"{pad}{output}, {carry} = (", *inner, f"{pad}    {output},", f"{pad})"]


def verbatim(source: str, width: int, written_for: int = 100) -> str:
    """A definition copied as written (a layer's own source, formatted for `written_for`
    columns, this project's): fenced off from the formatter where ruff at `width` would
    change it, a line too long for it, or lines it could join on a longer one."""
    if width <= written_for and all(len(line) <= width for line in source.splitlines()):
        return source
    return f"# fmt: off\n{source}\n# fmt: on"
