"""Whatever `validate` accepts, every backend builds (and `codegen` generates): names a
framework cannot take are refused at the node, naming the backend, before anything is built;
the lists behind that refusal are checked against the real frameworks; every other name
builds in every backend and in the generated code; spec text cannot inject code into the
generated modules."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from conftest import import_source

from xgraph.backend import load_backend
from xgraph.codegen import generate
from xgraph.errors import SpecError
from xgraph.ir.analysis import AnalysedGraph
from xgraph.spec.compile import compile_source
from xgraph.spec.extends import load_yaml
from xgraph.weights.initial import random_weights

if TYPE_CHECKING:
    from conftest import CliRunner

BACKENDS = ("keras", "onnx", "torch")

TINY = """\
xgraph: 1
name: MODEL
inputs:
  - {name: image, shape: [8, 8, 3]}
nodes:
  - {name: NAME, op: conv2d, filters: 4, kernel_size: 3}
  - {name: out, op: global_avg_pool}
"""


def tiny(tmp_path: Path, name: str = "conv", model: str = "tiny") -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.replace("NAME", name).replace("MODEL", model))
    return path


def unvalidated(path: Path) -> AnalysedGraph:
    """A spec compiled without the backends' name rules: what a build would get without
    them, to show that the frameworks really refuse what `validate` refuses."""
    return compile_source(load_yaml(path))


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in folder.rglob("*")
    }


# The names refused, and the backend whose rule refuses each.
REFUSED_NODE_NAMES = [
    ("training", "torch"),  # an nn.Module attribute set in its __init__
    ("_modules", "torch"),  # where nn.Module keeps the layers themselves
    ("_parameters", "torch"),
    ("forward", "torch"),
    ("state_dict", "torch"),
    ("_release", "torch"),  # set by xgraph's GraphModule after the layers
    ("steps", "torch"),
    ("__init__", "torch"),
    ("__x__", "torch"),  # any special name
    ("réseau", "keras"),  # TensorFlow's name scopes take ASCII only
]


@pytest.mark.parametrize(("name", "backend"), REFUSED_NODE_NAMES)
def test_validate_refuses_a_node_name_a_backend_cannot_use(
    run_cli: CliRunner, tmp_path: Path, name: str, backend: str
) -> None:
    path = tiny(tmp_path, name)
    result = run_cli("validate", path)
    assert result.code == 2
    first, hint = result.err.splitlines()
    assert first.startswith(
        f"{path}:6:5: error: node name '{name}' cannot be used with the {backend} backend: "
    )
    assert hint.startswith("  hint: rename it")


def test_every_listed_torch_name_is_refused_for_nodes_and_inputs() -> None:
    from xgraph.api import loads
    from xgraph_torch.names import RESERVED

    for name in sorted(RESERVED):
        for text in (TINY.replace("NAME", name), TINY.replace("name: image", f"name: {name}")):
            with pytest.raises(SpecError, match=f"name '{name}' cannot be used with the torch"):
                loads(text.replace("MODEL", "tiny").replace("NAME", "conv"))


@pytest.mark.parametrize("command", ["build", "codegen"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_command_refuses_such_a_name_before_building(
    run_cli: CliRunner, tmp_path: Path, command: str, backend: str
) -> None:
    """Whichever backend is asked for: the spec is refused as `validate` refuses it, and
    nothing is written."""
    if command == "codegen" and backend == "onnx":
        backend = "torch"  # ONNX has no code generator; the name is refused first anyway
    path = tiny(tmp_path, "_release")
    before = listing(tmp_path)
    suffix = {"keras": ".keras", "onnx": ".onnx", "torch": ".pt2"}[backend]
    output = tmp_path / "out" / f"model{suffix if command == 'build' else '.py'}"
    result = run_cli(command, path, "--backend", backend, "-o", output)
    assert result.code == 2
    assert f"{path}:6:5: error: node name '_release' cannot be used with the torch" in result.err
    assert "Traceback" not in result.err
    assert listing(tmp_path) == before


@pytest.mark.parametrize(
    ("model", "suggested"),
    [("a/b", "a_b"), ("my net", "my_net"), ("_net", "model_net"), ("réseau", "r_seau")],
)
def test_validate_refuses_a_model_name_keras_cannot_use(
    run_cli: CliRunner, tmp_path: Path, model: str, suggested: str
) -> None:
    path = tiny(tmp_path, model=f'"{model}"')
    result = run_cli("validate", path)
    assert result.code == 2
    first, hint = result.err.splitlines()
    assert first.startswith(
        f"{path}:2:7: error: model name {model!r} cannot be used with the keras backend: "
    )
    assert hint == f"  hint: for example: name: {suggested}"


PADDED = """\
xgraph: 1
name: padded
inputs:
  - {name: image, shape: [8, 8, 3]}
nodes:
  - {name: c, op: conv2d, filters: 4, kernel_size: 3, padding: [[1, 0], [0, 1]]}
  - {name: c_pad, op: activation, activation: relu}
  - {name: out, op: global_avg_pool}
"""


def test_a_node_named_like_the_padding_layer_keras_makes_is_refused(
    run_cli: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "padded.yaml"
    path.write_text(PADDED)
    result = run_cli("validate", path)
    assert result.code == 2
    assert result.err.splitlines()[0] == (
        f"{path}:7:5: error: node name 'c_pad' cannot be used with the keras backend: node "
        "'c' becomes a ZeroPadding2D layer of that name before its own layer"
    )


# The lists are the frameworks' own


def test_the_torch_list_is_every_attribute_of_the_model_torch_builds() -> None:
    """Every attribute of a fresh GraphModule is refused, and every name listed is one: the
    framework-free list is neither short nor stale for the installed torch."""
    from xgraph_torch.module import GraphModule
    from xgraph_torch.names import RESERVED, reserved_reason

    attributes = set(dir(GraphModule({}, (), (), ())))
    assert sorted(name for name in attributes if reserved_reason(name) is None) == []
    assert sorted(RESERVED - attributes) == []


def test_torch_really_fails_on_every_refused_name() -> None:
    from torch import nn

    from xgraph_torch.module import GraphModule
    from xgraph_torch.names import RESERVED

    for name in sorted(RESERVED | {"__init__", "__dict__", "__class__"}):
        with pytest.raises((KeyError, TypeError, AttributeError, SpecError)):
            GraphModule({name: nn.Identity()}, [(name, ("image",))], ["image"], [name])


@pytest.mark.parametrize(
    ("model", "node", "spec"),
    [
        ("a/b", "conv", TINY),
        ("my net", "conv", TINY),
        ("_net", "conv", TINY),
        ("tiny", "réseau", TINY),
        ("padded", "c", PADDED),
    ],
)
def test_keras_really_fails_on_every_refused_name(
    tmp_path: Path, model: str, node: str, spec: str
) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(spec.replace("MODEL", f'"{model}"').replace("NAME", node))
    analysed = unvalidated(path)
    keras = load_backend("keras")
    with pytest.raises(Exception, match="name") as raised:
        keras.predict(keras.build(analysed), [np.zeros((1, 8, 8, 3), np.float32)])
    assert not isinstance(raised.value, SpecError)


@pytest.mark.parametrize("model", ["a.b-c_1", ".net", "9net", "Xception-65"])
def test_keras_builds_and_runs_every_model_name_the_rule_accepts(
    run_cli: CliRunner, tmp_path: Path, model: str
) -> None:
    path = tiny(tmp_path, model=f'"{model}"')
    assert run_cli("validate", path).code == 0
    keras = load_backend("keras")
    built = keras.build(unvalidated(path))
    assert built.name == model
    (output,) = keras.predict(built, [np.ones((1, 8, 8, 3), np.float32)])
    assert output.shape == (1, 4)


# Every name validate accepts builds, in every backend and in the generated code

# Python keywords, names of the generated code's own (x, torch, self, F, i, name), a name
# Python mangles in a class body (__x), soft keywords: all fine as node names.
ODD_NAMES = ["class", "pass", "None", "x", "torch", "self", "F", "i", "name", "__x", "_x", "match"]

ODD = """\
xgraph: 1
name: odd
inputs:
  - {name: lambda, shape: [8, 8, 3]}
  - {name: nn, shape: [8, 8, 3]}
blocks:
  unit:
    nodes:
      - {name: "${name}_conv", op: conv2d, filters: 3, kernel_size: 3, padding: same}
nodes:
"""


def odd_spec(tmp_path: Path) -> Path:
    """A chain through every odd name, a two-input add, and a block used twice."""
    lines = [ODD]
    previous = "lambda"
    for index, name in enumerate(ODD_NAMES):
        op = (
            "{op: separable_conv2d, filters: 3, kernel_size: 3, padding: same}"
            if index % 2
            else "{op: conv2d, filters: 3, kernel_size: 3, padding: [[1, 1], [0, 2]]}"
        )
        lines.append(f"  - {{name: {name}, inputs: {previous}, {op[1:]}\n")
        previous = name
    lines.append(f"  - {{name: sum, op: add, inputs: [{previous}, nn]}}\n")
    lines.append("  - {use: unit, name: u1}\n  - {use: unit, name: u2}\n")
    lines.append("  - {name: global, op: global_avg_pool}\n")
    path = tmp_path / "odd.yaml"
    path.write_text("".join(lines))
    return path


def test_every_accepted_name_builds_in_every_backend_and_in_the_generated_code(
    run_cli: CliRunner, tmp_path: Path
) -> None:
    import torch

    path = odd_spec(tmp_path)
    assert run_cli("validate", path).code == 0
    from xgraph.api import load

    analysed = load(path)
    weights = random_weights(analysed, seed=3)
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(2, 8, 8, 3)).astype(np.float32) for _ in range(2)]
    outputs = {}
    for name in BACKENDS:
        backend = load_backend(name)
        model = backend.build(analysed, weights)
        (outputs[name],) = backend.predict(model, inputs)
        if name == "torch":
            built_state = model.state_dict()
        if name == "keras":
            built_layers = [layer.name for layer in model.layers]
    for name in ("keras", "onnx"):
        np.testing.assert_allclose(outputs[name], outputs["torch"], rtol=1e-4, atol=1e-5)

    generated = import_source(generate(analysed, "torch", path), tmp_path, "odd_torch")
    module = generated.Odd().eval()
    from xgraph_torch.codegen import state_dict_keys

    keys = state_dict_keys(analysed, list(built_state))  # layers of block instances nest
    assert sorted(module.state_dict()) == sorted(keys.values())
    module.load_state_dict({keys[key]: value for key, value in built_state.items()})
    with torch.no_grad():
        nchw = [torch.from_numpy(np.moveaxis(x, -1, 1).copy()) for x in inputs]
        np.testing.assert_allclose(module(*nchw).numpy(), outputs["torch"], rtol=1e-5, atol=1e-6)

    generated = import_source(generate(analysed, "keras", path), tmp_path, "odd_keras")
    model = generated.odd()
    assert [layer.name for layer in model.layers] == built_layers
    keras_backend = load_backend("keras")
    keras_backend.set_weights(model, analysed, weights)
    np.testing.assert_allclose(
        keras_backend.predict(model, inputs)[0], outputs["keras"], rtol=1e-5, atol=1e-6
    )


# Spec text in the generated code

INJECTION = '"""; print("injected"); """'

INJECTING = f"""\
xgraph: 1
name: 'MODEL'
description: 'ends with a quote {INJECTION} and a backslash \\ "'
inputs:
  - {{name: image, shape: [8, 8, 3]}}
blocks:
  'b{INJECTION}':
    nodes:
      - {{name: "${{name}}_conv", op: conv2d, filters: 3, kernel_size: 1}}
nodes:
  - {{use: 'b{INJECTION}', name: u1}}
  - {{use: 'b{INJECTION}', name: u2}}
  - {{op: global_avg_pool}}
"""


def only_definitions(source: str) -> list[str]:
    """What the module does when imported besides importing and defining things."""
    tree = ast.parse(source)
    body = tree.body[1:] if ast.get_docstring(tree) is not None else tree.body
    allowed = (ast.Import, ast.ImportFrom, ast.ClassDef, ast.FunctionDef)
    return [ast.dump(node) for node in body if not isinstance(node, allowed)]


def docstrings(source: str) -> list[str]:
    """Every docstring of the module, as Python reads it (escapes undone), module's first."""
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef)
    return [
        text
        for node in ast.walk(ast.parse(source))
        if isinstance(node, kinds) and (text := ast.get_docstring(node))
    ]


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_spec_text_cannot_inject_code_into_the_generated_module(
    tmp_path: Path, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A description, a block name and (torch, whose model names Keras's rule does not
    restrict) a model name that try to close the docstring they are printed in."""
    path = tmp_path / "injecting.yaml"
    model = f"m{INJECTION}" if backend == "torch" else "injecting"
    path.write_text(INJECTING.replace("MODEL", model))
    source = generate(unvalidated(path), backend, path)
    assert only_definitions(source) == []
    texts = docstrings(source)
    assert texts[0] == f'ends with a quote {INJECTION} and a backslash \\ "'
    assert sum(f"'b{INJECTION}' instance" in text for text in texts) == 1
    assert sum(f"The '{model}' spec's network" in text for text in texts) == 1
    module = import_source(source, tmp_path, f"injecting_{backend}")
    if backend == "torch":
        module.MPrintInjected().eval()(torch_zeros())
    else:
        module.injecting()
    assert "injected" not in capsys.readouterr().out


def torch_zeros() -> Any:
    import torch

    return torch.zeros(1, 3, 8, 8)


NAMED = """\
xgraph: 1
name: MODEL
inputs:
  - {name: image, shape: [8, 8, 3]}
nodes:
  - {op: separable_conv2d, filters: 4, kernel_size: 3}
  - {op: batch_norm}
  - {op: avg_pool2d, pool_size: 3, strides: 2, padding: same}
  - {op: global_avg_pool}
"""


@pytest.mark.parametrize(
    ("model", "class_name"),
    [("batch_norm", "BatchNorm_"), ("f", "F_"), ("none", "None_"), ("_", "Model")],
)
def test_the_torch_model_class_hides_nothing_the_module_uses(
    tmp_path: Path, model: str, class_name: str
) -> None:
    """Spec names whose class would be a keyword, nothing, or a helper class or module the
    generated code uses (`BatchNorm`, `F`)."""
    path = tmp_path / "named.yaml"
    path.write_text(NAMED.replace("MODEL", f'"{model}"'))
    module = import_source(generate(unvalidated(path), "torch", path), tmp_path, "named")
    network = getattr(module, class_name)().eval()
    assert network(torch_zeros()).shape == (1, 4)
