"""Fuzzing the spec compiler: mutations of every spec in specs/ end in an analysed graph or in
a clean, located SpecError, nothing else, within 500 MB of memory and a CPU ceiling each
(tests/fuzzing.py: far above what an example takes, far below what a missing budget costs).

Mutations of the YAML data: values of the wrong type, extreme numbers, nulls, long strings,
deep lists, expressions (long chains, deep nesting, huge numbers, unknown names), deleted,
renamed and wrapped keys, broken references and duplicated list items; of the text: bytes
flipped, inserted (control characters among them), deleted, lines duplicated (so keys
twice) and the file cut short. Examples are derandomised and never stored, so every run
tries the same ones; XGRAPH_FUZZ_EXAMPLES sets the number of examples per test for a
longer run (`XGRAPH_FUZZ_EXAMPLES=50000 pytest tests/test_fuzz_specs.py`, then random).
Memory is bounded by lowering RLIMIT_DATA's soft limit to the process's data size plus
500 MB while a test runs, so an allocation beyond the budget fails the example that makes it.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fuzzing import (  # noqa: F401 (memory_budget, slowest_example: autouse)
    cpu_ceiling,
    fuzz_settings,
    memory_budget,
    slowest_example,
)
from hypothesis import given
from hypothesis import strategies as st

from xgraph.api import load, loads
from xgraph.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
DOCUMENTS = {path.name: yaml.safe_load(path.read_text()) for path in SPECS}
TEXTS = {path.name: path.read_bytes() for path in SPECS}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of specs/, so that a mutated variant written beside it finds its bases."""
    copied = tmp_path_factory.mktemp("specs")
    for path in SPECS:
        shutil.copy(path, copied / path.name)
    return copied


def compile_cleanly(compile_spec: Any, file: str) -> None:
    """The spec compiles, or fails with a SpecError located in a file or a --set; anything
    else, or going over the CPU ceiling, fails the example."""
    with cpu_ceiling(file):
        try:
            compile_spec()
        except SpecError as error:
            text = error.format()
            assert error.location is not None, text
            assert "error: " in text and error.message, text


# ---------------------------------------------------------------------------------------------
# Values

NAMES = ["x", "input", "inputs", "name", "i", "width", "classes", "block1_conv1", "nothere"]

EXTREME_NUMBERS = st.sampled_from(
    [0, -1, 1, 2, 2**31, 2**63, 10**18 - 1, 10**18, 3_000_000_000, 10**400, -(10**30)]
)
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e300, -0.0, 1e-320])


@st.composite
def expressions(draw: st.DrawFn) -> str:
    """`${...}` text: short and sensible, long chains, deep nesting, or plain mistakes."""
    kind = draw(st.sampled_from(["small", "chain", "nested", "broken", "big"]))
    name = draw(st.sampled_from(NAMES))
    if kind == "chain":
        operator = draw(st.sampled_from([" + ", " * ", " and ", " or ", " - "]))
        count = draw(st.integers(1, 3000))
        body = operator.join([name] * count)
        if draw(st.booleans()):
            body = "not " * count + name
    elif kind == "nested":
        depth = draw(st.integers(1, 400))
        body = "(" * depth + name + ")" * depth
        if draw(st.booleans()):
            body = "[" * depth + name + "]" * depth
    elif kind == "broken":
        body = draw(st.sampled_from(["", "1 +", "a.b", "f(x)", "x[1:2]", "2 ** 8", "lambda: 1"]))
    elif kind == "big":
        body = draw(st.sampled_from(["9" * 5000, f"{name} * {name} * {name}", "1e308 * 10"]))
        body = f"int({body})" if draw(st.booleans()) else body
    else:
        left = draw(st.sampled_from([*NAMES, "1", "'a'", "true", "[1, 2]", "3.5"]))
        operator = draw(st.sampled_from(["+", "-", "*", "/", "//", "%", "==", "<", "in", "if"]))
        right = draw(st.sampled_from([*NAMES, "0", "'b'", "none"]))
        body = f"{left} {operator} {right}" if operator != "if" else f"{left} if {right} else 1"
    prefix = draw(st.sampled_from(["", "a_", "${x}"]))
    return f"{prefix}${{{body}}}"


HOSTILE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    EXTREME_NUMBERS,
    FLOATS,
    st.text(max_size=12),
    st.sampled_from(["", "relu", "same", "valid", "softmax", "${", "}", "-1", "1e3", "null"]),
    st.integers(0, 5000).map(lambda n: "a" * n),
    st.lists(st.integers(-3, 300), max_size=5),
    st.integers(1, 120).map(lambda depth: _nested(depth)),
    st.dictionaries(st.sampled_from(["a", "op", "name", "use"]), st.integers(), max_size=2),
    expressions(),
)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _paths(document: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key and index path in the document (itself excluded)."""
    items = (
        document.items()
        if isinstance(document, dict)
        else enumerate(document)
        if isinstance(document, list)
        else ()
    )
    for key, value in items:
        yield (*path, key)
        yield from _paths(value, (*path, key))


def _strings(document: Any) -> list[str]:
    if isinstance(document, dict):
        return [s for value in document.values() for s in _strings(value)]
    if isinstance(document, list):
        return [s for value in document for s in _strings(value)]
    return [document] if isinstance(document, str) else []


PATHS = {name: list(_paths(document)) for name, document in DOCUMENTS.items()}
STRINGS = {name: sorted(set(_strings(document))) for name, document in DOCUMENTS.items()}


def _has(container: Any, part: Any) -> bool:
    if isinstance(container, dict):
        return part in container
    return isinstance(container, list) and isinstance(part, int) and part < len(container)


def _parent(document: Any, path: tuple[Any, ...]) -> tuple[Any, Any] | None:
    """The document with the containers down to `path` copied (the rest shared), and the
    copy of `path`'s parent; None where an earlier mutation took `path` away."""
    root = parent = copy.copy(document)
    for part in path[:-1]:
        if not _has(parent, part) or not isinstance(parent[part], dict | list):
            return None
        parent[part] = parent = copy.copy(parent[part])
    return (root, parent) if _has(parent, path[-1]) else None


@st.composite
def mutated_documents(draw: st.DrawFn) -> tuple[str, Any]:
    """One spec of specs/, with one to three mutations of its data."""
    name = draw(st.sampled_from(sorted(DOCUMENTS)))
    document, paths, strings = DOCUMENTS[name], PATHS[name], STRINGS[name]
    for _ in range(draw(st.integers(1, 3))):
        path = paths[draw(st.integers(0, len(paths) - 1))]
        found = _parent(document, path)
        kind = draw(
            st.sampled_from(
                ["value", "value", "delete", "rename", "duplicate", "reference", "wrap"]
            )
        )
        if found is None:
            continue
        document, parent = found
        key = path[-1]
        if kind == "value":
            parent[key] = draw(HOSTILE_VALUES)
        elif kind == "delete":
            del parent[key]
        elif kind == "rename" and isinstance(parent, dict):
            new = draw(st.sampled_from([key[:-1], key + "s", key.upper(), "op", "use", "when"]))
            parent[new or "k"] = parent.pop(key)
        elif kind == "duplicate" and isinstance(parent, list):
            parent.insert(draw(st.integers(0, len(parent))), parent[key])
        elif kind == "reference":
            parent[key] = draw(st.sampled_from([*strings, "nothere", "x"]))
        elif kind == "wrap":
            parent[key] = draw(st.sampled_from([[parent[key]], {"value": parent[key]}]))
    return name, document


def _flow(value: Any) -> str:
    """A value as YAML flow text (strings double-quoted, with JSON's escapes)."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return ".nan"
        if value in (float("inf"), float("-inf")):
            return ".inf" if value > 0 else "-.inf"
        mantissa, _, exponent = repr(value).partition("e")  # YAML 1.1 wants 1.0e+300
        mantissa = mantissa if "." in mantissa else f"{mantissa}.0"
        return (
            f"{mantissa}e{'' if exponent[:1] in '+-' else '+'}{exponent}" if exponent else mantissa
        )
    if isinstance(value, list):
        return "[" + ", ".join(_flow(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_flow(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _dump(document: Any) -> str:
    """The document as YAML: top-level keys and list items one per line, the rest in flow."""
    if not isinstance(document, dict):
        return _flow(document) + "\n"
    lines = []
    for key, value in document.items():
        if isinstance(value, list) and value:
            lines.append(f"{json.dumps(str(key))}:")
            lines.extend(f"  - {_flow(item)}" for item in value)
        else:
            lines.append(f"{json.dumps(str(key))}: {_flow(value)}")
    return "\n".join(lines) + "\n"


@fuzz_settings(1200)
@given(mutated=mutated_documents())
def test_mutated_specs_compile_or_fail_cleanly(folder: Path, mutated: tuple[str, Any]) -> None:
    name, document = mutated
    file = str(folder / f"mutated_{name}")  # beside the copies: an `extends` finds its base
    compile_cleanly(lambda: loads(_dump(document), file=file), file)


# ---------------------------------------------------------------------------------------------
# Text and bytes

CONTROL = st.sampled_from([b"\x00", b"\x07", b"\x1b", b"\x7f", b"\xc2\x85", b"\xef\xbb\xbf"])


@st.composite
def mutated_bytes(draw: st.DrawFn) -> tuple[str, bytes]:
    """One spec's text with one to four edits of its bytes or lines."""
    name = draw(st.sampled_from(sorted(TEXTS)))
    data = bytearray(TEXTS[name])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "line", "cut", "control"]))
        if kind == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[at:at] = draw(
                st.binary(min_size=1, max_size=8)
                | st.sampled_from([b"{", b"[", b": ", b"&a", b"*a", b"${", b"\t"])
            )
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif kind == "line":  # a line twice: duplicate keys, duplicate nodes
            lines = bytes(data).split(b"\n")
            index = draw(st.integers(0, len(lines) - 1))
            lines.insert(index, lines[index])
            data = bytearray(b"\n".join(lines))
        elif kind == "cut":
            del data[at:]
        else:
            data[at:at] = draw(CONTROL)
    return name, bytes(data)


@fuzz_settings(600)
@given(mutated=mutated_bytes())
def test_mutated_bytes_compile_or_fail_cleanly(folder: Path, mutated: tuple[str, bytes]) -> None:
    name, data = mutated
    path = folder / f"mutated_{name}"
    path.write_bytes(data)
    compile_cleanly(lambda: load(path), str(path))


# ---------------------------------------------------------------------------------------------
# Expressions and --set, on a small spec that uses every kind of value

SMALL = """\
xgraph: 1
name: small
params:
  width: {type: int, default: 8}
  act: {type: str, default: relu}
  rate: {type: float, default: 0.5}
  shape: {type: shape, default: [8, 8, 3]}
inputs:
  - {name: x, shape: "${shape}"}
blocks:
  unit:
    params: {filters: {type: int, default: 4}}
    nodes:
      - {name: "${name}_conv", op: conv2d, filters: "${filters}", kernel_size: 1, when: WHEN}
      - {name: "${name}_act", op: activation, activation: "${act}"}
nodes:
  - {use: unit, name: "u${i}", repeat: REPEAT, args: {filters: FILTERS}}
  - {name: NAME, op: dense, units: UNITS, inputs: INPUTS}
"""
SLOTS = ["WHEN", "REPEAT", "FILTERS", "NAME", "UNITS", "INPUTS"]


@st.composite
def small_specs(draw: st.DrawFn) -> tuple[str, list[str]]:
    """The small spec with each slot a sensible value or an expression, and some --set."""
    text = SMALL
    defaults = {"WHEN": "true", "REPEAT": "2", "FILTERS": "4", "NAME": "head", "UNITS": "3"}
    defaults["INPUTS"] = "u1_act"
    for slot in SLOTS:
        value = defaults[slot]
        if draw(st.booleans()):
            value = '"' + draw(expressions()).replace('"', "'") + '"'
        text = text.replace(slot, value)
    overrides = draw(
        st.lists(
            st.sampled_from(["width", "act", "rate", "shape", "widht"]).flatmap(
                lambda name: st.sampled_from(
                    ["1", "-1", "0", "9" * 30, "1e400", "[1, 2]", "''", "relu", "x" * 2000, "null"]
                ).map(lambda value: f"{name}={value}")
            ),
            max_size=3,
        )
    )
    return text, overrides


@fuzz_settings(300)
@given(spec=small_specs())
def test_expressions_and_sets_end_cleanly(spec: tuple[str, list[str]]) -> None:
    text, overrides = spec
    compile_cleanly(lambda: loads(text, overrides, file="small.yaml"), "small.yaml")


def test_the_specs_here_compile_unmutated(folder: Path) -> None:
    """The fuzzing starts from valid specs, so that mutations reach past the first check."""
    for name in DOCUMENTS:
        assert len(loads(_dump(DOCUMENTS[name]), file=str(folder / name)).graph) > 20
