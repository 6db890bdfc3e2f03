"""Both backends train alike: the same weights, batch and SGD step give the same weights and
the same BatchNorm moving statistics afterwards (Keras updates the moving variance with the
biased batch variance; the torch backend does the same)."""

from __future__ import annotations

import numpy as np
import torch

from xgraph.api import loads
from xgraph.backend import load_backend
from xgraph.init import random_weights

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
