"""The Keras trainer (xgraph_keras.training): its loss is the recipe's, a resumed run repeats the
original (dropout masks included), and two tf.distribute workers sharing a global batch train
as one process does.

Run as a script (`python tests/test_train_keras.py OUT`) this file is one worker of the
data-parallel test: it trains every DISTRIBUTED case with TF_CONFIG from the environment and
writes its weights and metrics to OUT/rank<N>.npz.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from xgraph.api import loads
from xgraph.ir.analysis import AnalysedGraph
from xgraph.training.recipe import TrainingRecipe
from xgraph.training.replicas import Replicas, from_environment, local_environments
from xgraph.training.trainer import load_trainer
from xgraph.weights.initial import Weights, random_weights

DENSE = """\
xgraph: 1
name: dense
inputs: [{name: image, shape: [2, 2, 1]}]
nodes:
  - {name: flat, op: flatten}
  - {name: hidden, op: dense, units: 5, activation: relu}
  - {name: logits, op: dense, units: 3, activation: softmax}
"""

DROPOUT = """\
xgraph: 1
name: dropout
inputs: [{name: image, shape: [6, 6, 3]}]
nodes:
  - {name: conv, op: conv2d, filters: 4, kernel_size: 3, padding: same, use_bias: false}
  - {name: conv_bn, op: batch_norm, momentum: 0.9}
  - {name: conv_act, op: activation, activation: relu}
  - {name: gap, op: global_avg_pool}
  - {name: drop, op: dropout, rate: 0.5}
  - {name: logits, op: dense, units: 3}
  - {name: probs, op: activation, activation: softmax}
"""

PLAIN = """\
xgraph: 1
name: plain
inputs: [{name: image, shape: [6, 6, 3]}]
nodes:
  - {name: conv, op: conv2d, filters: 4, kernel_size: 3, strides: 2, padding: same}
  - {name: conv_act, op: activation, activation: relu}
  - {name: gap, op: global_avg_pool}
  - {name: logits, op: dense, units: 3, activation: softmax}
"""

NORMED = """\
xgraph: 1
name: normed
inputs: [{name: image, shape: [6, 6, 3]}]
nodes:
  - {name: conv, op: conv2d, filters: 4, kernel_size: 3, strides: 2, padding: same, use_bias: false}
  - {name: conv_bn, op: batch_norm, momentum: 0.8}
  - {name: conv_act, op: activation, activation: relu}
  - {name: gap, op: global_avg_pool}
  - {name: logits, op: dense, units: 3, activation: softmax}
"""

SGD = {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9}
# name -> (spec, recipe, sync_batch_norm): the cases both workers train, in this order.
DISTRIBUTED = {
    "plain": (PLAIN, {"optimizer": SGD, "weight_decay": 0.01, "label_smoothing": 0.1}, False),
    "synchronised": (NORMED, {"optimizer": {"name": "adam", "learning_rate": 0.01}}, True),
    "per_replica": (NORMED, {"optimizer": SGD}, False),
}
GLOBAL_BATCH, STEPS, RATES = 8, 3, (0.1, 0.05, 0.08)


def _recipe(settings: dict) -> TrainingRecipe:
    return TrainingRecipe.model_validate(settings)


def _batches(analysed: AnalysedGraph, count: int, rows: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    shape = analysed.shapes[analysed.graph.inputs[0]]
    for _ in range(count):
        images = rng.normal(size=(rows, *shape)).astype(np.float32)
        yield images, rng.integers(0, 3, size=rows)


def _evaluation_rows(analysed: AnalysedGraph) -> tuple[np.ndarray, np.ndarray]:
    ((images, labels),) = _batches(analysed, 1, 5, seed=11)
    return images, labels


def _train(name: str, replicas: Replicas) -> tuple[Weights, list[float], list[list[float]]]:
    """One DISTRIBUTED case: STEPS steps on this replica's shares, then evaluations of 5 rows
    (uneven shares: 3 and 2), 2 rows (1 each) and 1 row (an empty share on the second replica)."""
    from xgraph_keras.training import make_trainer

    spec, settings, sync = DISTRIBUTED[name]
    analysed = loads(spec)
    trainer = make_trainer(analysed, random_weights(analysed, 3), _recipe(settings), replicas, sync)
    losses = []
    for step, (images, labels) in enumerate(_batches(analysed, STEPS, GLOBAL_BATCH)):
        mine = replicas.share(GLOBAL_BATCH)
        losses.append(trainer.train_step(images[mine], labels[mine], RATES[step], step).loss)
    images, labels = _evaluation_rows(analysed)
    evaluations = []
    for rows in (5, 2, 1):
        mine = replicas.share(rows)
        metrics = trainer.evaluate(images[:rows][mine], labels[:rows][mine])
        evaluations.append([metrics.loss_sum, metrics.correct, metrics.count])
    return trainer.weights(), losses, evaluations


def _worker(out: Path) -> None:
    replicas = from_environment("keras")
    arrays = {}
    for name in DISTRIBUTED:
        weights, losses, evaluations = _train(name, replicas)
        arrays.update({f"{name}:{key}": value for key, value in weights.items()})
        arrays[f"{name}:losses"] = np.array(losses)
        arrays[f"{name}:evaluations"] = np.array(evaluations)
    np.savez(out / f"rank{replicas.rank}.npz", **arrays)


def _relative(actual: Weights, expected: Weights) -> float:
    """The largest difference of any weight, relative to the largest magnitude of its tensor."""
    assert sorted(actual) == sorted(expected)
    return max(
        float(np.abs(actual[k] - expected[k]).max() / max(np.abs(expected[k]).max(), 1e-6))
        for k in expected
    )


def _per_replica_reference(rank: int) -> tuple[Weights, list[float]]:
    """Per-replica BatchNorm by its definition, in one process: each half of the global batch
    through the model on its own, the loss the mean over the whole batch, the weights moved by
    Keras's SGD; the moving statistics those that replica `rank` keeps (tf.distribute leaves
    each replica's own: the EMA of its own halves, nothing averaged)."""
    import tensorflow as tf

    from xgraph_keras.backend import KerasBackend
    from xgraph_keras.framework import keras

    spec, settings, _ = DISTRIBUTED["per_replica"]
    analysed = loads(spec.replace("activation: softmax", "activation: linear"))
    backend = KerasBackend()
    model = backend.build(analysed, random_weights(analysed, 3))
    statistics = [v for v in model.non_trainable_variables if "moving" in v.path]
    kept = [[np.array(v.numpy()) for v in statistics] for _ in range(2)]
    optimizer = keras.optimizers.SGD(learning_rate=0.1, momentum=settings["optimizer"]["momentum"])
    cross_entropy = keras.losses.CategoricalCrossentropy(from_logits=True, reduction="sum")
    half, losses = GLOBAL_BATCH // 2, []
    for step, (images, labels) in enumerate(_batches(analysed, STEPS, GLOBAL_BATCH)):
        optimizer.learning_rate = RATES[step]
        with tf.GradientTape() as tape:
            total = 0.0
            for replica in (0, 1):
                for variable, value in zip(statistics, kept[replica], strict=True):
                    variable.assign(value)
                rows = slice(replica * half, (replica + 1) * half)
                logits = model([images[rows]], training=True)
                total += cross_entropy(tf.one_hot(labels[rows], 3), logits)
                kept[replica] = [np.array(v.numpy()) for v in statistics]
            loss = total / GLOBAL_BATCH
        losses.append(float(loss))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
    for variable, value in zip(statistics, kept[rank], strict=True):
        variable.assign(value)
    return backend.get_weights(model, analysed), losses


def test_one_step_loss_is_cross_entropy_with_smoothing_plus_l2() -> None:
    from xgraph_keras.training import make_trainer

    analysed = loads(DENSE)
    weights = random_weights(analysed, 5)
    recipe = _recipe({"optimizer": {"name": "sgd"}, "weight_decay": 0.03, "label_smoothing": 0.2})
    ((images, labels),) = _batches(analysed, 1, 6)
    metrics = make_trainer(analysed, weights, recipe).train_step(images, labels, 0.5, 0)

    hidden = np.maximum(images.reshape(6, 4) @ weights["hidden/kernel"] + weights["hidden/bias"], 0)
    logits = hidden @ weights["logits/kernel"] + weights["logits/bias"]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    targets = np.eye(3)[labels] * 0.8 + 0.2 / 3
    l2 = 0.03 * sum(
        (weights[k].astype(np.float64) ** 2).sum() for k in ("hidden/kernel", "logits/kernel")
    )
    expected = -(targets * log_probs).sum(axis=1).mean() + l2
    assert metrics.count == 6
    assert metrics.correct == int((logits.argmax(axis=1) == labels).sum())
    assert abs(metrics.loss - expected) <= 1e-6 * expected


def test_the_step_moves_an_unregularised_bias_by_the_batch_mean_gradient() -> None:
    analysed = loads(DENSE)
    weights = random_weights(analysed, 5)
    recipe = _recipe({"optimizer": {"name": "sgd"}, "weight_decay": 0.5, "label_smoothing": 0.1})
    ((images, labels),) = _batches(analysed, 1, 6)
    trainer = load_trainer("keras")(analysed, weights, recipe)
    trainer.train_step(images, labels, 0.5, 0)

    hidden = np.maximum(images.reshape(6, 4) @ weights["hidden/kernel"] + weights["hidden/bias"], 0)
    logits = hidden @ weights["logits/kernel"] + weights["logits/bias"]
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    gradient = (probs - (np.eye(3)[labels] * 0.9 + 0.1 / 3)).mean(axis=0)
    trained = trainer.weights()
    np.testing.assert_allclose(
        trained["logits/bias"] - weights["logits/bias"], -0.5 * gradient, rtol=1e-5, atol=1e-7
    )
    # The model for export is the whole spec's, softmax included, with the trained weights.
    exported = np.asarray(trainer.model.predict_on_batch(images))
    hidden = np.maximum(images.reshape(6, 4) @ trained["hidden/kernel"] + trained["hidden/bias"], 0)
    logits = hidden @ trained["logits/kernel"] + trained["logits/bias"]
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(exported, softmax, rtol=1e-5)


def test_adamw_decays_the_kernels_only() -> None:
    from xgraph_keras.training import make_trainer

    analysed = loads(DENSE)
    weights = random_weights(analysed, 5)
    ((images, labels),) = _batches(analysed, 1, 6)
    after = {}
    for name, extra in (("adam", {}), ("adamw", {"weight_decay": 0.25})):
        optimizer = {"name": name, "learning_rate": 0.01, **extra}
        trainer = make_trainer(analysed, weights, _recipe({"optimizer": optimizer}))
        trainer.train_step(images, labels, 0.01, 0)
        after[name] = trainer.weights()
    for key, before in weights.items():
        decay = after["adamw"][key] - after["adam"][key]
        expected = -0.01 * 0.25 * before if key.endswith("kernel") else np.zeros_like(before)
        np.testing.assert_allclose(decay, expected, atol=1e-7, err_msg=key)


def test_a_resumed_run_repeats_the_original_with_its_dropout_masks() -> None:
    from xgraph_keras.training import make_trainer

    analysed = loads(DROPOUT)
    weights = random_weights(analysed, 2)
    recipe = _recipe({"optimizer": {"name": "adam", "learning_rate": 0.05}, "seed": 9})
    batches = list(_batches(analysed, 4, 6))
    rates = (0.05, 0.04, 0.03, 0.02)

    straight = make_trainer(analysed, weights, recipe)
    for step, (images, labels) in enumerate(batches):
        straight.train_step(images, labels, rates[step], step)

    first = make_trainer(analysed, weights, recipe)
    for step, (images, labels) in enumerate(batches[:2]):
        first.train_step(images, labels, rates[step], step)
    checkpoint = (first.weights(), first.optimizer_state())
    resumed = make_trainer(analysed, weights, recipe)
    resumed.load_state(*checkpoint)
    for step, (images, labels) in enumerate(batches[2:], start=2):
        resumed.train_step(images, labels, rates[step], step)

    other_seed = make_trainer(analysed, weights, recipe.model_copy(update={"seed": 10}))
    for step, (images, labels) in enumerate(batches):
        other_seed.train_step(images, labels, rates[step], step)

    expected = straight.weights()
    assert _relative(resumed.weights(), expected) <= 1e-7
    assert _relative(other_seed.weights(), expected) > 1e-3, "dropout masks ignored the seed"
    assert checkpoint[1]["iteration"] == 2


def test_two_tf_distribute_workers_train_as_one_process(tmp_path: Path) -> None:
    script = Path(__file__).resolve()
    children = []
    for extra in local_environments("keras", 2):
        env = {**os.environ, **extra, "TF_CPP_MIN_LOG_LEVEL": "2"}
        children.append(
            subprocess.Popen(
                [sys.executable, str(script), str(tmp_path)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        )
    try:
        references = {name: _train(name, Replicas()) for name in ("plain", "synchronised")}
        per_replica = [_per_replica_reference(rank) for rank in (0, 1)]
        outputs = [child.communicate(timeout=240)[0] for child in children]
    finally:
        for child in children:
            child.kill()
    for child, output in zip(children, outputs, strict=True):
        assert child.returncode == 0, output.decode(errors="replace")[-3000:]

    for rank in (0, 1):
        saved = np.load(tmp_path / f"rank{rank}.npz")
        for name in DISTRIBUTED:
            mine = {
                key.split(":", 1)[1]: saved[key]
                for key in saved.files
                if key.startswith(f"{name}:")
            }
            got_losses, got_evaluations = mine.pop("losses"), mine.pop("evaluations")
            if name == "per_replica":
                # Evaluation uses each worker's own moving statistics: no one-process twin.
                expected, losses = per_replica[rank]
            else:
                expected, losses, evaluations = references[name]
                np.testing.assert_allclose(
                    got_evaluations[:, 0], np.array(evaluations)[:, 0], rtol=1e-5
                )
                assert got_evaluations[:, 1:].tolist() == np.array(evaluations)[:, 1:].tolist()
            np.testing.assert_allclose(got_losses, losses, rtol=1e-5, err_msg=name)
            difference = _relative(mine, expected)
            print(f"{name} rank {rank}: max relative difference {difference:.2e}")
            assert difference <= 1e-5, (name, rank)


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
