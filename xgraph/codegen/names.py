"""Names and text made from a spec for generated code: identifiers that cannot collide with
Python's keywords, and spec text escaped so that no spec can make the code run code of its own.
"""

from __future__ import annotations

import keyword
import re
import textwrap
import unicodedata
from collections.abc import Sequence


def identifier(text: str, fallback: str) -> str:
    """`text` as a Python identifier (non-word characters as '_'), else `fallback`. It is
    NFKC-normalised first, as Python normalises identifiers (`ﬁlter` is `filter`)."""
    name = re.sub(r"\W", "_", unicodedata.normalize("NFKC", text))
    if not name or name[0].isdigit():
        name = f"{fallback}_{name}" if name else fallback
    return f"{name}_" if keyword.iskeyword(name) else name


def class_name(text: str) -> str:
    """`my_net` -> `MyNet`; a name with nothing left (`_`) is `Model`, a keyword gets '_'."""
    parts = identifier(text, "model").split("_")
    name = "".join(part[:1].upper() + part[1:] for part in parts)
    if not name:
        return "Model"
    return f"{name}_" if keyword.iskeyword(name) else name


def clear_of(name: str, taken: set[str] | frozenset[str]) -> str:
    """`name`, with '_' appended while it is taken (it would shadow a module or a class)."""
    while name in taken:
        name = f"{name}_"
    return name


def printable(text: str) -> str:
    """`text` with every unprintable character (a control character, a line separator)
    written as its Python escape, for one line of a comment or a docstring."""
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def docstring_text(text: str) -> str:
    """Spec text made safe inside a triple-quoted docstring: backslashes doubled, and every
    double quote next to another or at the end escaped, so that nothing a spec says can
    close the string; a lone quote stays as written."""
    text = printable(text).replace("\\", "\\\\")
    return re.sub(r'"(?=")|(?<=")"|"$', r'\\"', text)


def docstring_lines(text: str, width: int) -> list[str]:
    """A description as the wrapped, escaped lines of a docstring."""
    lines = textwrap.wrap(" ".join(text.split()), width, break_long_words=False)
    return [docstring_text(line) for line in lines] or ["A generated model."]


def block_docstring(block: str, instances: Sequence[str], what: str, width: int) -> list[str]:
    """A block definition's docstring lines (the second on indented by 4): the layers of an
    instance of `block`, `what` says how they are named; where the block has several
    structures, the instances that have this one."""
    text = f"The layers of a '{block}' instance, {what}."
    if instances:
        text += f" This structure is the one of {', '.join(instances)}."
    lines = docstring_lines(text, width - 10)
    return [lines[0], *(f"    {line}" for line in lines[1:])]


def comment_lines(text: str, width: int) -> list[str]:
    """Text as comment lines (without '# ') of at most `width` columns, escaped."""
    lines = textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)
    return [printable(line) for line in lines]
