"""The torch trainer follows the recipe's (Keras's) rules: each optimizer's update against a
hand-written float64 reference of Keras's formula, the loss with L2 and label smoothing,
exact resumption from a checkpoint (dropout masks included), and DDP over two processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xgraph.api import loads
from xgraph.backend import load_backend
from xgraph.errors import SpecError
from xgraph.training.recipe import TrainingRecipe
from xgraph.training.replicas import Replicas, local_environments
from xgraph.training.schedule import learning_rate
from xgraph.training.trainer import load_trainer, training_graph
from xgraph.weights.initial import random_weights
from xgraph_torch.training import make_trainer

DENSE = """\
xgraph: 1
name: dense
inputs: [{name: x, shape: [4]}]
nodes:
  - {name: hidden, op: dense, units: 5, activation: tanh}
  - {name: logits, op: dense, units: 3, activation: softmax}
"""

# Ends in sigmoid, not softmax: the loss is taken from probabilities, as Keras does.
SIGMOID = DENSE.replace("activation: softmax", "activation: sigmoid")

CONV = """\
xgraph: 1
name: conv
inputs: [{name: image, shape: [6, 6, 2]}]
nodes:
  - {name: conv, op: conv2d, filters: 4, kernel_size: 3, padding: same}
  - {name: act, op: activation, activation: relu}
  - {name: gap, op: global_avg_pool}
  - {name: logits, op: dense, units: 3}
  - {name: probabilities, op: activation, activation: softmax}
"""

CONV_BN = """\
xgraph: 1
name: conv_bn
inputs: [{name: image, shape: [6, 6, 2]}]
nodes:
  - {name: conv, op: conv2d, filters: 4, kernel_size: 3, padding: same, use_bias: false}
  - {name: bn, op: batch_norm, momentum: 0.8}
  - {name: act, op: activation, activation: relu}
  - {name: gap, op: global_avg_pool}
  - {name: drop, op: dropout, rate: 0.5}
  - {name: logits, op: dense, units: 3, activation: softmax}
"""

OPTIMIZERS = {
    "sgd": {"name": "sgd", "learning_rate": 0.5, "momentum": 0.9},
    "nesterov": {"name": "sgd", "learning_rate": 0.5, "momentum": 0.8, "nesterov": True},
    "rmsprop": {"name": "rmsprop", "learning_rate": 0.05, "epsilon": 1e-3},
    "rmsprop_centered": {
        "name": "rmsprop",
        "learning_rate": 0.05,
        "rho": 0.8,
        "momentum": 0.5,
        "epsilon": 1e-3,
        "centered": True,
    },
    "adam": {"name": "adam", "learning_rate": 0.05, "epsilon": 1e-3},
    "adamw": {"name": "adamw", "learning_rate": 0.05, "epsilon": 1e-3, "weight_decay": 0.5},
}
SCHEDULES = {
    "constant": {"name": "constant"},
    "step_warmup": {"name": "step", "decay_rate": 0.5, "every_epochs": 1, "warmup_epochs": 1},
    "cosine": {"name": "cosine", "alpha": 0.1},
}
STEPS_PER_EPOCH = 2


def recipe(**settings) -> TrainingRecipe:
    return TrainingRecipe.model_validate({"epochs": 3, **settings})


def batch(seed: int, rows: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, *shape)).astype(np.float32), rng.integers(0, 3, rows)


def dense_logits(w: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    hidden = torch.tanh(x @ w["hidden/kernel"] + w["hidden/bias"])
    return hidden @ w["logits/kernel"] + w["logits/bias"]


def keras_update(
    settings: dict, state: dict, w: np.ndarray, g: np.ndarray, lr: float, t: int, kernel: bool
) -> np.ndarray:
    """One step of Keras 3's rule (keras/src/optimizers), written out in float64 (Adam's bias
    corrections in float32, as Keras computes them)."""
    name = settings["name"]
    if name == "sgd":
        m = settings.get("momentum", 0.0)
        v = state["v"] = m * state.get("v", 0.0) - lr * g
        return w + (m * v - lr * g if settings.get("nesterov") else v)
    if name == "rmsprop":
        rho, momentum = settings.get("rho", 0.9), settings.get("momentum", 0.0)
        v = state["v"] = rho * state.get("v", 0.0) + (1 - rho) * g**2
        if settings.get("centered"):
            a = state["a"] = rho * state.get("a", 0.0) + (1 - rho) * g
            v = v - a**2
        increment = lr * g / np.sqrt(v + settings["epsilon"])
        state["m"] = momentum * state.get("m", 0.0) + increment
        return w - state["m"]
    if name == "adamw" and kernel:
        w = w - w * settings["weight_decay"] * lr
    m = state["m"] = state.get("m", 0.0) + (g - state.get("m", 0.0)) * (1 - 0.9)
    v = state["v"] = state.get("v", 0.0) + (g**2 - state.get("v", 0.0)) * (1 - 0.999)
    # Keras computes 1 - beta ** t in float32: up to 1e-5 away from the real number.
    beta_1, beta_2, one = np.float32(0.9), np.float32(0.999), np.float32(1)
    alpha = (
        lr * np.sqrt(float(one - beta_2 ** np.float32(t))) / float(one - beta_1 ** np.float32(t))
    )
    return w - m * alpha / (np.sqrt(v) + settings["epsilon"])


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_each_optimizer_follows_keras_update_rule(optimizer: str, schedule: str) -> None:
    settings = OPTIMIZERS[optimizer]
    run = recipe(optimizer=settings, schedule=SCHEDULES[schedule])
    analysed = loads(DENSE)
    weights = random_weights(analysed, seed=3)
    trainer = make_trainer(analysed, weights, run)

    reference = {key: value.astype(np.float64) for key, value in weights.items()}
    states: dict[str, dict] = {key: {} for key in reference}
    rates = []
    for step in range(5):
        x, y = batch(step, 8, (4,))
        rate = learning_rate(run, step, STEPS_PER_EPOCH)
        rates.append(rate)
        trainer.train_step(x, y, rate, step)

        w = {key: torch.tensor(value, requires_grad=True) for key, value in reference.items()}
        loss = F.cross_entropy(
            dense_logits(w, torch.tensor(x, dtype=torch.float64)), torch.tensor(y)
        )
        loss.backward()
        for key in reference:
            reference[key] = keras_update(
                settings,
                states[key],
                reference[key],
                w[key].grad.numpy(),
                rate,
                step + 1,
                key.endswith("kernel"),
            )
    assert (len(set(rates)) == 1) == (schedule == "constant")
    for key, value in trainer.weights().items():
        assert relative_difference(value, reference[key]) < 1e-6, key
        assert np.abs(value - weights[key]).max() > 1e-3, f"{key} did not train"


@pytest.mark.parametrize("spec", [DENSE, SIGMOID], ids=["logits", "probabilities"])
def test_loss_and_step_with_l2_and_label_smoothing(spec: str) -> None:
    analysed = loads(spec)
    weights = random_weights(analysed, seed=5)
    run = recipe(
        optimizer={"name": "sgd", "learning_rate": 0.3}, weight_decay=0.05, label_smoothing=0.2
    )
    trainer = make_trainer(analysed, weights, run)
    x, y = batch(7, 6, (4,))
    metrics = trainer.train_step(x, y, 0.3, 0)

    w = {
        key: torch.tensor(value, dtype=torch.float64, requires_grad=True)
        for key, value in weights.items()
    }
    logits = dense_logits(w, torch.tensor(x, dtype=torch.float64))
    target = np.full((6, 3), 0.2 / 3) + 0.8 * np.eye(3)[y]
    if spec == DENSE:
        log_p = torch.log_softmax(logits, dim=1)
    else:
        p = torch.sigmoid(logits)
        log_p = torch.log((p / p.sum(dim=1, keepdim=True)).clamp(1e-7, 1 - 1e-7))
    l2 = 0.05 * sum((w[key] ** 2).sum() for key in ("hidden/kernel", "logits/kernel"))
    loss = -(torch.tensor(target) * log_p).sum(dim=1).mean() + l2
    loss.backward()

    assert metrics.count == 6
    assert metrics.loss == pytest.approx(loss.item(), rel=1e-6)
    assert metrics.correct == int((logits.argmax(dim=1).numpy() == y).sum())
    after = trainer.weights()
    for key, value in w.items():
        expected = value.detach().numpy() - 0.3 * value.grad.numpy()
        assert relative_difference(after[key], expected) < 1e-6, key


def test_evaluate_runs_inference_mode_and_changes_nothing() -> None:
    analysed = loads(CONV_BN)
    weights = random_weights(analysed, seed=2)
    trainer = make_trainer(analysed, weights, recipe(weight_decay=0.01, label_smoothing=0.1))
    x, y = batch(3, 5, (6, 6, 2))
    metrics = trainer.evaluate(x, y)
    assert all(np.array_equal(value, weights[key]) for key, value in trainer.weights().items())

    backend = load_backend("torch")
    (probabilities,) = backend.predict(backend.build(analysed, weights), [x])
    target = np.full((5, 3), 0.1 / 3) + 0.9 * np.eye(3)[y]
    l2 = 0.01 * sum(
        float((weights[k].astype(np.float64) ** 2).sum()) for k in ("conv/kernel", "logits/kernel")
    )
    expected = -(target * np.log(probabilities)).sum(axis=1).mean() + l2
    assert metrics.loss == pytest.approx(expected, rel=1e-5)
    assert metrics.correct == int((probabilities.argmax(axis=1) == y).sum())
    assert trainer.evaluate(x[:0], y[:0]).count == 0


@pytest.mark.parametrize("spec", [DENSE, CONV], ids=["fused_softmax", "softmax_node"])
def test_the_whole_spec_model_holds_the_trained_weights(spec: str) -> None:
    analysed = loads(spec)
    backend, weights = load_backend("torch"), random_weights(analysed)
    trainer = make_trainer(analysed, weights, recipe())
    x, y = batch(4, 3, analysed.input_shapes()[0])
    (before,) = backend.predict(trainer.model, [x])
    trainer.train_step(x, y, 0.5, 0)
    (got,) = backend.predict(trainer.model, [x])
    (expected,) = backend.predict(backend.build(analysed, trainer.weights()), [x])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-6)  # softmax included
    assert not np.allclose(got, before)


@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop_centered", "adamw"])
def test_a_resumed_trainer_continues_as_the_original(optimizer: str, tmp_path: Path) -> None:
    analysed = loads(CONV_BN)
    weights = random_weights(analysed, seed=1)
    run = recipe(
        optimizer=OPTIMIZERS[optimizer], schedule=SCHEDULES["cosine"], seed=9, weight_decay=0.01
    )
    batches = [batch(10 + step, 4, (6, 6, 2)) for step in range(4)]
    rates = [learning_rate(run, step, STEPS_PER_EPOCH) for step in range(4)]

    def train(trainer, steps: range, numbering: int = 0) -> None:
        for step in steps:
            trainer.train_step(*batches[step], rates[step], step - numbering)

    straight = make_trainer(analysed, weights, run)
    train(straight, range(4))

    first = make_trainer(analysed, weights, run)
    train(first, range(2))
    checkpoint = (first.weights(), first.optimizer_state())
    np.savez(tmp_path / "weights.npz", **checkpoint[0])
    np.savez(tmp_path / "state.npz", **checkpoint[1])
    train(first, range(2, 4))  # the checkpoint is a snapshot: training on leaves it alone
    with np.load(tmp_path / "weights.npz") as w, np.load(tmp_path / "state.npz") as s:
        for saved, loaded in zip(checkpoint, (w, s), strict=True):
            assert all(np.array_equal(saved[key], loaded[key]) for key in loaded.files)
    resumed = make_trainer(analysed, weights, run)
    resumed.load_state(*checkpoint)
    train(resumed, range(2, 4))
    # Dropout's masks follow the step: the same steps numbered 0 and 1 train otherwise.
    renumbered = make_trainer(analysed, weights, run)
    renumbered.load_state(*checkpoint)
    train(renumbered, range(2, 4), numbering=2)

    expected, other = straight.weights(), renumbered.weights()
    for got in (resumed.weights(), first.weights()):
        for key, value in expected.items():
            assert np.abs(got[key] - value).max() <= 1e-7 * max(np.abs(value).max(), 1.0), key
    assert any(not np.allclose(other[key], value) for key, value in expected.items())
    for key, value in straight.optimizer_state().items():
        np.testing.assert_allclose(resumed.optimizer_state()[key], value, rtol=1e-7, err_msg=key)


def test_synchronised_batch_norm_is_a_clear_error() -> None:
    analysed = loads(CONV_BN)
    with pytest.raises(SpecError, match="SyncBatchNorm needs GPUs") as error:
        load_trainer("torch")(
            analysed, random_weights(analysed), recipe(), Replicas(0, 2), sync_batch_norm=True
        )
    assert "keras" in error.value.format()


CHILD = """\
import json, sys
import numpy as np
from xgraph.api import loads
from xgraph.training.recipe import TrainingRecipe
from xgraph.training.replicas import from_environment
from xgraph_torch.training import make_trainer

replicas = from_environment("torch")
cases = json.loads(open(sys.argv[1]).read())
result = {}
for name, case in cases.items():
    analysed = loads(case["spec"])
    data = np.load(case["data"])
    weights = {key[2:]: data[key] for key in data.files if key.startswith("w:")}
    run = TrainingRecipe.model_validate_json(case["recipe"])
    trainer = make_trainer(analysed, weights, run, replicas)
    for step, rate in enumerate(case["rates"]):
        x, y = data[f"x{step}"], data[f"y{step}"]
        share = replicas.share(len(y))
        m = trainer.train_step(x[share], y[share], rate, step)
        result[f"{name}/train{step}"] = [m.loss_sum, m.correct, m.count]
    for key, value in trainer.weights().items():
        result[f"{name}/w:{key}"] = value
    for rows in (1, 2, 5):
        x, y = data["x_eval"][:rows], data["y_eval"][:rows]
        share = replicas.share(rows)
        m = trainer.evaluate(x[share], y[share])
        result[f"{name}/eval{rows}"] = [m.loss_sum, m.correct, m.count]
np.savez(sys.argv[2] + f"{replicas.rank}.npz", **result)
"""

DDP_CASES = {
    # No BatchNorm: two replicas equal one process; unequal shares in the last batch (4 + 3),
    # and evaluations of 1 row (an empty share on rank 1), 2 rows (1 + 1) and 5 (3 + 2).
    "plain": (
        CONV,
        {
            "optimizer": OPTIMIZERS["adam"],
            "schedule": SCHEDULES["cosine"],
            "weight_decay": 0.02,
            "label_smoothing": 0.1,
        },
        (8, 8, 7),
    ),
    # BatchNorm per replica (and no dropout: DDP's masks are per replica by design).
    "batch_norm": (
        CONV_BN.replace("rate: 0.5", "rate: 0.0"),
        {"optimizer": {"name": "sgd", "learning_rate": 0.2}},
        (8, 8, 8),
    ),
}


def run_two_processes(tmp_path: Path) -> tuple[dict, dict, dict]:
    """Both DDP cases in one pair of processes; returns rank 0's, rank 1's results and the
    cases' inputs."""
    cases, inputs = {}, {}
    for name, (spec, settings, rows) in DDP_CASES.items():
        analysed = loads(spec)
        data = {f"w:{k}": v for k, v in random_weights(analysed, seed=4).items()}
        run = recipe(**settings)
        for step, count in enumerate(rows):
            data[f"x{step}"], data[f"y{step}"] = batch(20 + step, count, (6, 6, 2))
        data["x_eval"], data["y_eval"] = batch(30, 5, (6, 6, 2))
        np.savez(tmp_path / f"{name}.npz", **data)
        rates = [learning_rate(run, step, STEPS_PER_EPOCH) for step in range(len(rows))]
        cases[name] = {
            "spec": spec,
            "data": str(tmp_path / f"{name}.npz"),
            "recipe": run.model_dump_json(),
            "rates": rates,
        }
        inputs[name] = (analysed, data, run, rates)
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    (tmp_path / "child.py").write_text(CHILD)
    children = [
        subprocess.Popen(
            [
                sys.executable,
                str(tmp_path / "child.py"),
                str(tmp_path / "cases.json"),
                str(tmp_path / "rank"),
            ],
            env={**os.environ, **env, "OMP_NUM_THREADS": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for env in local_environments("torch", 2)
    ]
    outputs = [child.communicate(timeout=120)[0] for child in children]
    for child, output in zip(children, outputs, strict=True):
        assert child.returncode == 0, output
    ranks = [dict(np.load(tmp_path / f"rank{rank}.npz")) for rank in range(2)]
    return ranks[0], ranks[1], inputs


def one_process(analysed, data: dict, run: TrainingRecipe, rates: list[float]) -> dict:
    trainer = make_trainer(analysed, {k[2:]: v for k, v in data.items() if k[:2] == "w:"}, run)
    result = {}
    for step, rate in enumerate(rates):
        m = trainer.train_step(data[f"x{step}"], data[f"y{step}"], rate, step)
        result[f"train{step}"] = [m.loss_sum, m.correct, m.count]
    for rows in (1, 2, 5):
        m = trainer.evaluate(data["x_eval"][:rows], data["y_eval"][:rows])
        result[f"eval{rows}"] = [m.loss_sum, m.correct, m.count]
    return result | {f"w:{k}": v for k, v in trainer.weights().items()}


def halves_reference(analysed, data: dict, rates: list[float]) -> dict:
    """Per-replica BatchNorm by its definition, in one process with plain torch: each half
    batch normalised by its own statistics, the loss the mean over the whole batch, SGD, and
    the moving statistics that DDP leaves on rank 0 (updated from the first half only)."""
    backend = load_backend("torch")
    net = backend.build(
        training_graph(analysed).analysed, {k[2:]: v for k, v in data.items() if k[:2] == "w:"}
    ).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=rates[0])
    for step, rate in enumerate(rates):
        x = torch.from_numpy(data[f"x{step}"].transpose(0, 3, 1, 2).copy())
        y = torch.from_numpy(data[f"y{step}"])
        half = len(y) // 2
        first = net(x[:half])
        kept = [b.clone() for b in net.buffers()]
        second = net(x[half:])
        with torch.no_grad():
            for buffer, value in zip(net.buffers(), kept, strict=True):
                buffer.copy_(value)
        loss = (
            F.cross_entropy(first, y[:half], reduction="sum")
            + F.cross_entropy(second, y[half:], reduction="sum")
        ) / len(y)
        optimizer.zero_grad()
        loss.backward()
        for group in optimizer.param_groups:
            group["lr"] = rate
        optimizer.step()
    net.eval()
    with torch.no_grad():
        x = torch.from_numpy(data["x_eval"].transpose(0, 3, 1, 2).copy())
        loss = F.cross_entropy(net(x), torch.from_numpy(data["y_eval"]), reduction="sum")
    weights = backend.get_weights(net, training_graph(analysed).analysed)
    return {"eval5": loss.item()} | {f"w:{k}": v for k, v in weights.items()}


def test_two_ddp_processes_train_as_one(tmp_path: Path) -> None:
    rank0, rank1, inputs = run_two_processes(tmp_path)

    expected = one_process(*inputs["plain"])
    for key, value in expected.items():
        got = rank0[f"plain/{key}"]
        assert relative_difference(np.asarray(got), np.asarray(value)) < 1e-5, key
        assert relative_difference(rank1[f"plain/{key}"], np.asarray(value)) < 1e-5, key

    analysed, data, _, rates = inputs["batch_norm"]
    reference = halves_reference(analysed, data, rates)
    for key, value in reference.items():
        if key.startswith("w:"):
            assert relative_difference(rank0[f"batch_norm/{key}"], value) < 1e-5, key
    assert rank0["batch_norm/eval5"][0] == pytest.approx(reference["eval5"], rel=1e-5)
    # DDP keeps the trainable weights equal; the moving statistics are per replica between
    # steps (rank 1 holds its own last update until the next forward broadcasts rank 0's).
    for key, value in rank0.items():
        if key.startswith("batch_norm/w:") and not key.endswith(("moving_mean", "moving_variance")):
            np.testing.assert_array_equal(rank1[key], value, err_msg=key)
    assert not np.allclose(
        rank1["batch_norm/w:bn/moving_mean"], rank0["batch_norm/w:bn/moving_mean"]
    )
    np.testing.assert_array_equal(rank1["batch_norm/eval5"], rank0["batch_norm/eval5"])
