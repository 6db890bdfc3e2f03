"""Both backends train alike: the same weights, batch and SGD step give the same weights and
the same BatchNorm moving statistics afterwards (Keras updates the moving variance with the
biased batch variance; the torch backend does the same). And the trainers of `xgraph train`
follow one recipe to the same numbers: each optimizer with each schedule, L2 weight decay and
label smoothing, five steps from the same weights and batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xgraph.api import loads
from xgraph.backend import load_backend
from xgraph.training.recipe import TrainingRecipe
from xgraph.training.replicas import Replicas
from xgraph.training.schedule import learning_rate
from xgraph.training.trainer import load_trainer, regularized_keys
from xgraph.weights.initial import initial_weights, random_weights

SPEC = """\
xgraph: 1
name: small
inputs: [{name: image, shape: [12, 12, 3]}]
nodes:
  - {name: conv, op: conv2d, filters: 8, kernel_size: 3, strides: 2, padding: same, use_bias: false}
  - {name: conv_bn, op: batch_norm}
  - {name: conv_act, op: activation, activation: relu}
  - {name: sep, op: separable_conv2d, filters: 6, kernel_size: 3, padding: same, use_bias: false}
  - {name: sep_bn, op: batch_norm, momentum: 0.9}
  - {name: pool, op: max_pool2d, pool_size: 3, strides: 2, padding: same}
  - {name: gap, op: global_avg_pool}
  - {name: logits, op: dense, units: 5}
"""


def test_one_sgd_step_gives_the_same_weights_and_statistics_in_both_backends() -> None:
    import keras

    analysed = loads(SPEC)
    weights = random_weights(analysed, seed=4)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 12, 12, 3)).astype(np.float32)
    target = rng.normal(size=(6, 5)).astype(np.float32)

    keras_backend, torch_backend = load_backend("keras"), load_backend("torch")
    keras_model = keras_backend.build(analysed, weights)
    keras_model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    keras_model.train_on_batch(x, target)
    after_keras = keras_backend.get_weights(keras_model, analysed)

    torch_model = torch_backend.build(analysed, weights).train()
    optimizer = torch.optim.SGD(torch_model.parameters(), lr=0.1)
    prediction = torch_model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    torch.nn.functional.mse_loss(prediction, torch.from_numpy(target)).backward()
    optimizer.step()
    after_torch = torch_backend.get_weights(torch_model, analysed)

    for key, before in weights.items():
        moved = np.abs(after_keras[key] - before).max()
        difference = np.abs(after_torch[key] - after_keras[key]).max()
        assert difference <= 1e-5 * max(np.abs(after_keras[key]).max(), 1.0), key
        if key.endswith(("moving_mean", "moving_variance", "kernel")):
            assert moved > 0, f"{key} did not change in the step"


# --- the trainers of `xgraph train`: every optimizer and schedule, step by step -------------

OPTIMIZERS = {
    "sgd": {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9},
    "sgd_nesterov": {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
    "rmsprop": {"name": "rmsprop", "learning_rate": 0.003, "momentum": 0.9},
    "rmsprop_centered": {"name": "rmsprop", "learning_rate": 0.003, "centered": True},
    "adam": {"name": "adam", "learning_rate": 0.003},
    "adamw": {"name": "adamw", "learning_rate": 0.003, "weight_decay": 0.05},
}
SCHEDULES = {
    "constant_warmup": {"name": "constant", "warmup_epochs": 1},
    "step": {"name": "step", "decay_rate": 0.5, "every_epochs": 1},
    "cosine": {"name": "cosine", "alpha": 0.1},
}
STEPS, STEPS_PER_EPOCH, BATCH = 5, 2, 6


@pytest.fixture(scope="module")
def shared_start() -> tuple:
    analysed = loads(SPEC)
    # A fresh model, as training starts: random BatchNorm statistics would make a network whose
    # first steps amplify float rounding chaotically (losses of 8 and more at step 0).
    weights = initial_weights(analysed, seed=4)
    rng = np.random.default_rng(7)
    batches = [
        (
            rng.normal(size=(BATCH, 12, 12, 3)).astype(np.float32),
            rng.integers(0, 5, size=BATCH).astype(np.int64),
        )
        for _ in range(STEPS)
    ]
    return analysed, weights, batches


def _run(backend: str, analysed, weights, recipe, batches) -> tuple[list[float], dict]:
    trainer = load_trainer(backend)(analysed, weights, recipe, Replicas(), False)
    losses = []
    for step, (images, labels) in enumerate(batches):
        rate = learning_rate(recipe, step, STEPS_PER_EPOCH)
        losses.append(trainer.train_step(images, labels, rate, step).loss)
    return losses, trainer.weights()


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_five_steps_give_the_same_losses_and_weights_in_torch_and_keras(
    shared_start: tuple, optimizer: str, schedule: str
) -> None:
    analysed, weights, batches = shared_start
    recipe = TrainingRecipe.model_validate(
        {
            "optimizer": OPTIMIZERS[optimizer],
            "schedule": SCHEDULES[schedule],
            "weight_decay": 1e-3,
            "label_smoothing": 0.1,
            "batch_size": BATCH,
            "epochs": 3,
        }
    )
    keras_losses, keras_weights = _run("keras", analysed, weights, recipe, batches)
    torch_losses, torch_weights = _run("torch", analysed, weights, recipe, batches)
    np.testing.assert_allclose(torch_losses, keras_losses, rtol=1e-4)
    assert keras_losses[-1] < keras_losses[0]  # it trains
    for key in weights:
        scale = max(np.abs(keras_weights[key]).max(), 1e-12)
        difference = np.abs(torch_weights[key] - keras_weights[key]).max() / scale
        assert difference <= 1e-4, f"{key}: {difference:.2e} relative"
    for key in regularized_keys(analysed):
        assert not np.array_equal(keras_weights[key], weights[key]), f"{key} did not move"
