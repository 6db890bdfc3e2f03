"""The shape of the code: the core knows no framework, and backends reach it one way.

The core (`xgraph/`) imports no backend package and no framework, and holds no table of a
framework's classes: every torch or Keras fact lives in a backend package, reached through
entry points (`xgraph.plugins`).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

CORE = ROOT / "xgraph"
BACKEND_PACKAGES = {path.name for path in (ROOT / "backends").iterdir() if path.is_dir()}
FRAMEWORKS = {"torch", "tensorflow", "keras", "h5py", "onnx", "onnxruntime", "jax"}


def _core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def _imported_roots(tree: ast.AST) -> set[str]:
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_core_imports_no_backend_package_or_framework() -> None:
    assert {"xgraph_torch", "xgraph_keras"} <= BACKEND_PACKAGES
    offenders = {
        str(path.relative_to(ROOT)): sorted(found)
        for path in _core_modules()
        if (found := _imported_roots(ast.parse(path.read_text())) & (BACKEND_PACKAGES | FRAMEWORKS))
    }
    assert not offenders, f"core modules importing backends or frameworks: {offenders}"


def _framework_class_names() -> set[str]:
    """Every layer class name torch.nn and keras.layers export (Conv2d, BatchNormalization)."""
    import torch.nn

    from xgraph_keras.framework import keras

    names = {name for name in dir(torch.nn) if name[:1].isupper()}
    names |= {name for name in dir(keras.layers) if name[:1].isupper()}
    return {name for name in names if len(name) > 4 and re.search(r"[a-z][A-Z0-9]", name)}


def _code_strings(tree: ast.AST) -> set[str]:
    """String constants other than docstrings."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    }


def test_the_core_holds_no_table_of_framework_classes() -> None:
    """No torch or Keras class name as a value in the core's code (prose may name them:
    an op's summary says which Keras layer it matches)."""
    classes = _framework_class_names()
    assert {"Conv2d", "BatchNormalization", "SeparableConv2D"} <= classes
    offenders = {}
    for path in _core_modules():
        for text in _code_strings(ast.parse(path.read_text())):
            if " " not in text and (found := set(re.findall(r"\w+", text)) & classes):
                offenders.setdefault(str(path.relative_to(ROOT)), set()).update(found)
    assert not offenders, f"framework class names in core code: {offenders}"


def test_reading_rules_and_keras_files_imports_no_framework(root: Path, tmp_path: Path) -> None:
    """`xgraph ops` reads every backend's rules, and a Keras `.weights.h5` (written here by
    Keras itself) is read into canonical weights, in a process that never imports torch,
    tensorflow or keras."""
    from xgraph.api import load
    from xgraph.weights.formats import write_weights
    from xgraph.weights.initial import initial_weights

    spec = root / "examples" / "specs" / "tiny_cnn.yaml"
    analysed = load(spec)
    path = tmp_path / "tiny.weights.h5"
    write_weights(path, analysed, initial_weights(analysed, seed=0))
    code = (
        "import sys\n"
        "from xgraph.cli import main\n"
        "main(['ops'])\n"
        "from xgraph.api import load\n"
        "from xgraph.weights.formats import read_weights\n"
        f"weights = read_weights({str(path)!r}, load({str(spec)!r}))\n"
        "print(len(weights))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'tensorflow', 'keras')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == [str(len(initial_weights(analysed))), "[]"]
