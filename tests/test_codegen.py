"""Code generation: standalone torch and Keras modules from a spec, checked against the
xgraph builds (weights load unchanged, same numbers, same parameter counts).

The golden files under tests/golden/ are the generated Xception modules; after a deliberate
change to the generated code, rewrite them with `XGRAPH_REGEN_GOLDEN=1 pytest
tests/test_codegen.py` and review the diff.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import subprocess
import sys
import tokenize
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backend_cases import case_ids, one_op_spec
from conftest import DEFINITION_SPECS, import_source

from xgraph.api import load, loads
from xgraph.codegen import class_name, generate, identifier
from xgraph.errors import SpecError
from xgraph.weights.initial import random_weights

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
PLUGIN_SPEC = ROOT / "examples" / "xgraph_example_ops" / "specs" / "affine_net.yaml"
SPECS = [*DEFINITION_SPECS, PLUGIN_SPEC]  # thin variants are their bases' code
XCEPTION = ROOT / "specs" / "xception.yaml"
BACKENDS = ("torch", "keras")


def relative_path(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def generated(spec: Path, backend: str, overrides: tuple[str, ...] = ()) -> str:
    """The module for `spec`, generated from the repository's root, as `xgraph codegen` is."""
    with contextlib.chdir(ROOT):
        analysed = load(relative_path(spec), overrides)
        return generate(analysed, backend, relative_path(spec))


def code_lines(source: str) -> int:
    """Lines holding code: no blank lines, comments or docstrings."""
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.update(range(first.lineno, first.end_lineno + 1))
    lines: set[int] = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip and token.type != tokenize.ENDMARKER:
            lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstrings)


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-30))


@pytest.fixture(scope="module")
def sources() -> dict[tuple[str, str], str]:
    return {
        (spec.stem, backend): generated(spec, backend) for spec in SPECS for backend in BACKENDS
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_xception_module_is_current(sources: dict, backend: str) -> None:
    source = sources[("xception", backend)]
    golden = GOLDEN / f"xception_{backend}.py"
    if os.environ.get("XGRAPH_REGEN_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(source)
    assert golden.exists(), "no golden file: run with XGRAPH_REGEN_GOLDEN=1"
    assert source == golden.read_text(), (
        f"generated {backend} code differs from {golden}: review the diff, then run "
        "XGRAPH_REGEN_GOLDEN=1 pytest tests/test_codegen.py"
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_xception_module_is_short_stable_and_ruff_clean(
    sources: dict, backend: str, tmp_path: Path
) -> None:
    source = sources[("xception", backend)]
    # torch: init_weights, and BatchNorm in float32 under autocast (mixed precision)
    assert code_lines(source) <= (282 if backend == "torch" else 255)
    assert generated(XCEPTION, backend) == source
    assert_ruff_clean(source, tmp_path / f"xception_{backend}.py")


def assert_ruff_clean(source: str, path: Path, line_length: int | None = None) -> None:
    """`ruff check` and `ruff format --check` pass at ruff's defaults (88 columns) or at
    `line_length`, whatever this project's own settings are."""
    path.write_text(source)
    config = ["--isolated", *(["--line-length", str(line_length)] if line_length else [])]
    ruff = [sys.executable, "-m", "ruff"]
    for command in (["check", *config, str(path)], ["format", "--check", *config, str(path)]):
        result = subprocess.run([*ruff, *command], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_header_names_spec_parameters_and_version(sources: dict, backend: str) -> None:
    header = sources[("xception", backend)].split('"""')[0]
    assert "specs/xception.yaml" in header
    assert "xgraph 0.1.0" in header
    assert "middle_flow_blocks=8" in header


def model_function(source: str, name: str) -> list[str]:
    """The lines of the generated Keras function `name`, its signature to its return."""
    lines = source.splitlines()
    start = lines.index(f"def {name}(classes=1000):")
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("    return "))
    return lines[start : end + 1]


def test_nasnet_reads_as_written_by_hand(sources: dict) -> None:
    """NASNet's cells are functions (classes in torch) of the two values a cell takes, the
    cell before's output threaded along (`x, previous = cell(x, previous), x`), each stack's
    normal cells a loop; the model's own function is the stem and those calls."""
    keras_code = sources[("nasnet", "keras")]
    for cell in ("normal_cell", "reduction_cell"):
        assert f"def {cell}(x, previous, name, filters):" in keras_code
    for first, stop, filters in ((1, 4, 44), (6, 9, 88), (10, 13, 176)):
        assert (
            f"    for i in range({first}, {stop}):\n"
            f'        x, previous = normal_cell(x, previous, f"{{i}}", filters={filters}), x\n'
        ) in keras_code
    assert 'x, previous = reduction_cell(x, previous, "reduce_4", filters=88), x' in keras_code
    body = model_function(keras_code, "nasnet")
    assert len(body) <= 25, "\n".join(body)
    assert not any("layers.SeparableConv2D" in line for line in body)
    # the first normal cell of a stack halves `previous`: another structure, its instances named
    assert "def normal_cell_2(x, previous, name, filters):" in keras_code
    assert "This structure is the one of cell_0, cell_5, cell_9." in " ".join(keras_code.split())
    torch_code = sources[("nasnet", "torch")]
    assert "class NormalCell(nn.Module):" in torch_code
    assert "def forward(self, x: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:" in (
        torch_code
    )
    assert "        self.cell_2_3 = nn.ModuleList()\n" in torch_code
    assert (
        "        for block in self.cell_2_3:\n            x, previous = block(x, previous), x\n"
    ) in torch_code


def test_convnext_reads_as_written_by_hand(sources: dict) -> None:
    """ConvNeXt's block is one function (a class in torch), each stage a loop over it."""
    keras_code = sources[("convnext", "keras")]
    assert "def convnext_block(x, name, filters):" in keras_code
    assert 'layers.Dense(filters * 4, name=f"{name}_pointwise_conv_1")' in keras_code
    for stage, depth, filters in ((0, 3, 96), (1, 3, 192), (2, 9, 384), (3, 3, 768)):
        assert f"    for i in range(0, {depth}):\n" in keras_code
        assert f'f"convnext_tiny_stage_{stage}_block_{{i}}", filters={filters}' in " ".join(
            keras_code.split()
        )
    assert len(model_function(keras_code, "convnext")) <= 45
    assert "class ConvnextBlock(nn.Module):" in sources[("convnext", "torch")]


def test_imports_only_the_framework(sources: dict) -> None:
    for (_, backend), source in sources.items():
        imported = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add((node.module or "").split(".")[0])
        assert imported - set(sys.stdlib_module_names) == {backend}


@pytest.fixture(scope="module")
def torch_and_keras() -> tuple[Any, Any]:
    from xgraph_keras.backend import KerasBackend
    from xgraph_torch.backend import TorchBackend

    return TorchBackend(), KerasBackend()


def assert_generated_models_equal_the_builds(
    analysed: Any,
    torch_source: str,
    keras_source: str,
    torch_and_keras: tuple[Any, Any],
    tmp_path: Path,
) -> None:
    """Import both generated modules, count their parameters, load the builds' weight files
    into them unchanged, and compare their outputs with the builds' and with each other."""
    import torch

    from xgraph_torch.codegen import state_dict_keys
    from xgraph_torch.files import STATE_DICT_FILES

    torch_backend, keras_backend = torch_and_keras
    weights = random_weights(analysed, seed=3)  # random BatchNorm statistics too
    rng = np.random.default_rng(0)
    images = [
        rng.standard_normal((2, *shape)).astype(np.float32) for shape in analysed.input_shapes()
    ]
    name = analysed.name

    # torch: the build's state dict loads strictly, its keys moved to where the generated
    # module keeps a block instance's layers (block3_sepconv1 -> block3.sepconv1).
    torch_module = import_source(torch_source, tmp_path, f"{name}_torch")
    model = getattr(torch_module, class_name(name))().eval()
    trainable = sum(p.numel() for p in model.parameters())
    statistics = sum(b.numel() for b in model.buffers() if b.is_floating_point())
    assert (trainable, statistics) == (analysed.trainable_params, analysed.non_trainable_params)
    STATE_DICT_FILES.write(tmp_path / "weights.pt", analysed, weights)
    state = torch.load(tmp_path / "weights.pt", weights_only=True)
    keys = state_dict_keys(analysed, list(state))
    model.load_state_dict({keys[key]: value for key, value in state.items()})
    built = torch_backend.build(analysed, weights)
    want_torch = torch_backend.predict(built, images)
    got_torch = torch_backend.predict(model, images)  # contiguous NCHW
    for got, want in zip(got_torch, want_torch, strict=True):
        assert relative_error(got, want) <= 1e-6
    model = model.to(memory_format=torch.channels_last)
    channels_last = [
        torch.from_numpy(np.moveaxis(x, -1, 1).copy()).contiguous(memory_format=torch.channels_last)
        if x.ndim == 4
        else torch.from_numpy(x)
        for x in images
    ]
    with torch.inference_mode():
        same_layout = model(*channels_last)
    same_layout = same_layout if isinstance(same_layout, tuple) else (same_layout,)
    for got, want in zip(same_layout, want_torch, strict=True):
        got = got.numpy()
        np.testing.assert_array_equal(np.moveaxis(got, 1, -1) if got.ndim == 4 else got, want)

    # keras: the build's .weights.h5 loads unchanged; outputs bitwise equal.
    keras_module = import_source(keras_source, tmp_path, f"{name}_keras")
    keras_model = getattr(keras_module, identifier(name, "model"))()
    assert keras_model.count_params() == analysed.total_params
    built_keras = keras_backend.build(analysed, weights)  # one Keras build: saved, then run
    built_keras.save_weights(tmp_path / "model.weights.h5")
    keras_model.load_weights(tmp_path / "model.weights.h5")
    want_keras = keras_backend.predict(built_keras, images)
    got_keras = keras_backend.predict(keras_model, images)
    for got, want in zip(got_keras, want_keras, strict=True):
        np.testing.assert_array_equal(got, want)

    # The two generated models agree.
    for got, want in zip(got_torch, got_keras, strict=True):
        assert relative_error(got, want) <= 1e-5


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_generated_models_equal_the_builds(
    spec: Path, sources: dict, torch_and_keras: tuple[Any, Any], tmp_path: Path
) -> None:
    """Generate, import, count parameters, load the builds' weight files, compare outputs.

    Specs with an `input_shape` parameter run at 75x75 (the smallest size every model of
    the zoo takes) with the classifier: the same code, a tenth of the time of 224 or 299."""
    with contextlib.chdir(ROOT):
        analysed = load(relative_path(spec))
        overrides = ("input_shape=[75, 75, 3]",) if "input_shape" in analysed.params else ()
        if overrides:
            analysed = load(relative_path(spec), overrides)
            codes = {b: generated(spec, b, overrides) for b in BACKENDS}
        else:
            codes = {b: sources[(spec.stem, b)] for b in BACKENDS}
    assert_generated_models_equal_the_builds(
        analysed, codes["torch"], codes["keras"], torch_and_keras, tmp_path
    )


TINY = """
xgraph: 1
name: tiny
inputs: [{name: image, shape: [8, 8, 3]}]
nodes:
  - {name: NAME, op: conv2d, filters: 4, kernel_size: 3}
  - {name: out, op: global_avg_pool}
"""


@pytest.mark.parametrize("name", ["training", "forward"])
def test_torch_refuses_node_names_that_cannot_be_attributes(name: str, tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.replace("NAME", name))
    with pytest.raises(SpecError) as raised:
        generate(load(path), "torch", path)
    assert raised.value.location is not None
    assert raised.value.location.line == 6
    assert name in raised.value.message


def test_keras_takes_a_keyword_as_a_layer_name(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.replace("NAME", "pass"))
    source = generate(load(path), "keras", path)
    assert 'name="pass"' in source
    compile(source, "tiny", "exec")


def test_unknown_backend_is_an_error() -> None:
    with pytest.raises(SpecError, match="no code generator"):
        generate(loads(TINY.replace("NAME", "conv")), "onnx", "x.yaml")


@pytest.mark.parametrize(("op", "case"), case_ids())
def test_every_op_generates_code_that_computes_the_build(
    op: str, case: str, torch_and_keras: tuple[Any, Any], tmp_path: Path
) -> None:
    """Each op's own examples (built-in and plugin ops) as one-op specs: the generated
    modules compute what the builds compute, in both frameworks."""
    path = tmp_path / "one_op.yaml"
    path.write_text(one_op_spec(op, case))
    analysed = load(path)
    sources = {backend: generate(analysed, backend, path) for backend in BACKENDS}
    assert_generated_models_equal_the_builds(
        analysed, sources["torch"], sources["keras"], torch_and_keras, tmp_path
    )


def test_value_only_parameters_become_keyword_arguments(sources: dict, tmp_path: Path) -> None:
    """`classes` only changes the classifier's size: a keyword argument with the spec's default,
    giving the parameter count the spec gives with `--set classes=...`; the structural
    parameters (include_top, pooling, middle_flow_blocks) are resolved."""
    expected = load(XCEPTION, ["classes=7"]).total_params
    keras_module = import_source(sources[("xception", "keras")], tmp_path, "xception_k")
    assert "include_top" not in sources[("xception", "keras")].split('"""', 2)[2]
    assert keras_module.xception(classes=7).count_params() == expected
    torch_module = import_source(sources[("xception", "torch")], tmp_path, "xception_t")
    model = torch_module.Xception(classes=7)
    counted = sum(p.numel() for p in model.parameters())
    counted += sum(b.numel() for b in model.buffers() if b.is_floating_point())
    assert counted == expected


BLOCK_NAMED_MODULE = """
xgraph: 1
name: twice
inputs: [{name: image, shape: [8, 8, 3]}]
blocks:
  module:
    nodes:
      - {name: "${name}_conv", op: conv2d, filters: 3, kernel_size: 3, padding: same}
      - {name: "${name}_act", op: activation, activation: relu}
nodes:
  - {use: module, name: first}
  - {use: module, name: second}
  - {name: pool, op: global_avg_pool}
"""


def test_a_block_named_like_a_module_method_gets_another_name(tmp_path: Path) -> None:
    """A block `module` becomes a class `Module`, no name of nn.Module's own is hidden;
    its instances are attributes named after them, and the model is the spec's."""
    path = tmp_path / "twice.yaml"
    path.write_text(BLOCK_NAMED_MODULE)
    analysed = load(path)
    source = generate(analysed, "torch", path)
    assert "class Module(nn.Module):" in source
    assert "add_module" not in source
    model = import_source(source, tmp_path, "twice_torch").Twice()
    assert sum(p.numel() for p in model.parameters()) == analysed.total_params
    assert {"first.conv.weight", "second.conv.weight"} <= set(model.state_dict())


SHADOWING = """
xgraph: 1
name: layers
inputs:
  - {name: inputs, shape: [8, 8, 3]}
  - {name: layers, shape: [8, 8, 3]}
nodes:
  - {name: left, op: conv2d, filters: 4, kernel_size: 3, padding: same, inputs: inputs}
  - {name: right, op: conv2d, filters: 4, kernel_size: 3, padding: same, inputs: layers}
  - {name: joined, op: add, inputs: [left, right]}
"""


def test_keras_names_never_shadow_the_modules_the_code_uses(
    tmp_path: Path, torch_and_keras: tuple[Any, Any]
) -> None:
    """A spec named `layers` with an input `layers`: the generated function and variables
    get other names, and the model still computes the build's numbers."""
    path = tmp_path / "shadowing.yaml"
    path.write_text(SHADOWING)
    analysed = load(path)
    source = generate(analysed, "keras", path)
    module = import_source(source, tmp_path, "shadowing_keras")
    model = module.layers_()
    weights = random_weights(analysed, seed=1)
    model.set_weights([weights[f"{n}/{p}"] for n in ("left", "right") for p in ("kernel", "bias")])
    _, keras_backend = torch_and_keras
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(2, 8, 8, 3)).astype(np.float32) for _ in range(2)]
    (want,) = keras_backend.predict(keras_backend.build(analysed, weights), xs)
    np.testing.assert_array_equal(np.asarray(model.predict_on_batch(xs)), want)
