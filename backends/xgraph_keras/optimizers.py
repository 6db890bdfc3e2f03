"""The recipe's optimizer as Keras's own: Keras 3's update rules are the reference semantics,
so the Keras trainer uses them unchanged."""

from __future__ import annotations

from collections.abc import Sequence

from xgraph.training.recipe import SGD, Adam, AdamW, Optimizer, RMSprop
from xgraph_keras.framework import keras


def keras_optimizer(
    settings: Optimizer, decayed: Sequence[keras.Variable], trainable: Sequence[keras.Variable]
) -> keras.optimizers.Optimizer:
    """The optimizer of `settings`, not yet built. AdamW's decoupled decay reaches only the
    `decayed` variables (the regularised kernels); the other `trainable` ones are excluded.
    Named after the recipe's optimizer, so its variables' paths (the checkpoint's keys) do not
    depend on how many optimizers the process made before."""
    rate = float(settings.learning_rate)
    name = settings.name
    if isinstance(settings, SGD):
        return keras.optimizers.SGD(
            learning_rate=rate, name=name, momentum=settings.momentum, nesterov=settings.nesterov
        )
    if isinstance(settings, RMSprop):
        return keras.optimizers.RMSprop(
            learning_rate=rate,
            name=name,
            rho=settings.rho,
            momentum=settings.momentum,
            epsilon=settings.epsilon,
            centered=settings.centered,
        )
    if isinstance(settings, AdamW):
        optimizer = keras.optimizers.AdamW(
            learning_rate=rate,
            name=name,
            weight_decay=settings.weight_decay,
            beta_1=settings.beta_1,
            beta_2=settings.beta_2,
            epsilon=settings.epsilon,
        )
        kept = {id(variable) for variable in decayed}
        optimizer.exclude_from_weight_decay(
            var_list=[variable for variable in trainable if id(variable) not in kept]
        )
        return optimizer
    if isinstance(settings, Adam):
        return keras.optimizers.Adam(
            learning_rate=rate,
            name=name,
            beta_1=settings.beta_1,
            beta_2=settings.beta_2,
            epsilon=settings.epsilon,
        )
    raise AssertionError(f"unknown optimizer {settings!r}")
