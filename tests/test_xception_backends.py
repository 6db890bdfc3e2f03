"""Xception through both backends: counts, saved files that load without xgraph, parity,
training, feature extraction, torch.compile and torch.export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from xgraph.api import load
from xgraph.backend import load_backend
from xgraph.backend.rules import op_rules
from xgraph.cli import main
from xgraph.weights.initial import initial_weights

SPEC = "specs/xception.yaml"
SMALL = ["input_shape=[71,71,3]", "classes=10"]
FEATURES = "block3_pool,block14_sepconv2_act,predictions"


@pytest.fixture(scope="module")
def xception():
    return load(SPEC)


@pytest.fixture(scope="module")
def torch_backend():
    return load_backend("torch")


@pytest.fixture(scope="module")
def keras_backend():
    return load_backend("keras")


def test_torch_parameters_and_running_statistics(xception, torch_backend) -> None:
    model = torch_backend.build(xception)
    assert sum(p.numel() for p in model.parameters()) == 22_855_952
    statistics = sum(
        b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var"))
    )
    assert statistics == 54_528
    assert isinstance(model.block2_sepconv1, torch.nn.Module)
    assert "block2_sepconv1.depthwise.weight" in model.state_dict()


def test_keras_trainable_and_non_trainable(xception, keras_backend) -> None:
    model = keras_backend.build(xception)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert (trainable, frozen) == (22_855_952, 54_528)
    assert model.get_layer("block3_pool").name == "block3_pool"


@pytest.mark.parametrize("batch", [1, 2])
def test_outputs_have_batch_and_classes(xception, torch_backend, keras_backend, batch) -> None:
    weights = initial_weights(xception, seed=0)
    x = np.random.default_rng(batch).random((batch, 299, 299, 3), dtype=np.float32)
    for backend in (torch_backend, keras_backend):
        (y,) = backend.predict(backend.build(xception, weights), [x])
        assert y.shape == (batch, 1000)
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


def test_parity_command_agrees(capsys) -> None:
    assert main(["parity", SPEC, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["agrees"] is True
    assert report["totals"]["torch"] == {"trainable": 22_855_952, "non_trainable": 54_528}
    assert report["totals"]["keras"] == report["totals"]["torch"]


def test_parity_command_names_the_node_of_a_broken_lowering(monkeypatch, capsys) -> None:
    from dataclasses import replace

    rules = op_rules("torch")
    original = rules["separable_conv2d"]

    def with_bias(analysed, node):
        call = original.lower(analysed, node)
        if node.name == "block7_sepconv2":
            call.kwargs["bias"] = True
        return call

    monkeypatch.setitem(rules, "separable_conv2d", replace(original, lower=with_bias))
    assert main(["parity", SPEC, *[arg for s in SMALL for arg in ("--set", s)]]) == 1
    out = capsys.readouterr().out
    assert "1 node(s) differ" in out
    assert "block7_sepconv2" in out
    assert "block7_sepconv1 " not in out


def _run_without_xgraph(code: str) -> str:
    """Run `code` in a fresh interpreter and check it never imported xgraph."""
    check = "\nimport sys\nassert not [m for m in sys.modules if m.startswith('xgraph')]\n"
    result = subprocess.run(
        [sys.executable, "-c", code + check],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_built_files_load_without_xgraph(tmp_path: Path) -> None:
    pt2, keras_file = tmp_path / "x.pt2", tmp_path / "x.keras"
    for backend, path in (("torch", pt2), ("keras", keras_file)):
        assert (
            main(
                [
                    "build",
                    SPEC,
                    "--backend",
                    backend,
                    "-o",
                    str(path),
                    "--seed",
                    "1",
                    "--set",
                    "input_shape=[71,71,3]",
                ]
            )
            == 0
        )
    out = _run_without_xgraph(
        "import torch\n"
        f"m = torch.export.load({str(pt2)!r}).module()\n"
        "print([tuple(m(torch.rand(b, 3, 71, 71)).shape) for b in (1, 2, 5)])\n"
        "import os; os.environ['KERAS_BACKEND'] = 'tensorflow'\n"
        "import keras, numpy as np\n"
        f"k = keras.saving.load_model({str(keras_file)!r})\n"
        "print([tuple(k.predict_on_batch(np.random.rand(b, 71, 71, 3)).shape) for b in (1, 2)])\n"
        "print(k.count_params())\n"
    )
    lines = out.strip().splitlines()
    assert lines[-3] == "[(1, 1000), (2, 1000), (5, 1000)]"
    assert lines[-2] == "[(1, 1000), (2, 1000)]"
    assert lines[-1] == str(load(SPEC, ["input_shape=[71,71,3]"]).total_params)


def test_feature_outputs_in_both_backends(tmp_path: Path) -> None:
    expected = [(2, 37, 37, 256), (2, 10, 10, 2048), (2, 1000)]
    analysed = load(SPEC).with_outputs(tuple(FEATURES.split(",")))
    x = np.random.default_rng(0).random((2, 299, 299, 3), dtype=np.float32)
    weights = initial_weights(analysed, seed=0)
    for name in ("torch", "keras"):
        backend = load_backend(name)
        outputs = backend.predict(backend.build(analysed, weights), [x])
        assert [o.shape for o in outputs] == expected, name
    path = tmp_path / "features.pt2"
    assert main(["build", SPEC, "--backend", "torch", "-o", str(path), "--outputs", FEATURES]) == 0
    program = torch.export.load(str(path)).module()
    shapes = [tuple(t.shape) for t in program(torch.rand(2, 3, 299, 299))]
    assert shapes == [(2, 256, 37, 37), (2, 2048, 10, 10), (2, 1000)]


def test_training_step_changes_weights_in_torch(torch_backend) -> None:
    analysed = load(SPEC, SMALL)
    model = torch_backend.build(analysed, initial_weights(analysed, seed=0)).train()
    before = model.block1_conv1.weight.detach().clone()
    mean_before = model.block1_conv1_bn.running_mean.clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, target = torch.rand(4, 3, 71, 71), torch.tensor([0, 1, 2, 3])
    loss = torch.nn.functional.nll_loss(torch.log(model(x)), target)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert not torch.equal(before, model.block1_conv1.weight)
    assert not torch.equal(mean_before, model.block1_conv1_bn.running_mean)


def test_training_step_changes_weights_in_keras(keras_backend) -> None:
    import keras

    analysed = load(SPEC, SMALL)
    model = keras_backend.build(analysed, initial_weights(analysed, seed=0))
    before = model.get_layer("block1_conv1").get_weights()[0].copy()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((4, 71, 71, 3), dtype=np.float32)
    loss = model.train_on_batch(x, np.array([0, 1, 2, 3]))
    assert np.isfinite(loss)
    assert not np.array_equal(before, model.get_layer("block1_conv1").get_weights()[0])


def test_torch_model_runs_under_torch_compile(torch_backend) -> None:
    analysed = load(SPEC, [*SMALL, "middle_flow_blocks=1"])
    model = torch_backend.build(analysed, initial_weights(analysed, seed=0))
    x = torch.rand(2, 3, 71, 71)
    with torch.inference_mode():
        expected = model(x)
        compiled = torch.compile(model)(x)
    torch.testing.assert_close(compiled, expected, rtol=1e-4, atol=1e-6)


def test_torch_export_has_a_dynamic_batch(torch_backend) -> None:
    analysed = load(SPEC, SMALL)
    model = torch_backend.build(analysed, initial_weights(analysed, seed=0))
    program = torch_backend.export(model, analysed).module()
    for batch in (1, 3):
        x = torch.rand(batch, 3, 71, 71)
        torch.testing.assert_close(program(x), model(x))


def test_numeric_parity_agrees_at_every_node(capsys) -> None:
    assert main(["parity", SPEC, "--numeric", "--json", "--batch", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["agrees"] is True
    assert len(report["nodes"]) == 133
    assert report["max_relative_error"] < 1e-4


def test_numeric_parity_names_block3_pool_when_torch_pads_symmetrically(
    monkeypatch, capsys
) -> None:
    """The classic porting bug: nn.MaxPool2d(3, 2, padding=1) has the right shape, wrong windows."""
    from dataclasses import replace

    rules = op_rules("torch")
    original = rules["max_pool2d"]

    def symmetric(analysed, node):
        call = original.lower(analysed, node)
        if call.kwargs.get("pad") == "same":  # 3x3 windows: one pixel on either side
            call.kwargs.pop("pad")
            call.kwargs["padding"] = (1, 1)
        return call

    monkeypatch.setitem(rules, "max_pool2d", replace(original, lower=symmetric))
    assert main(["parity", SPEC, "--numeric", "--json", "--batch", "1"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["first_divergence"] == "block3_pool"
