"""The tf.distribute strategy a Keras trainer runs under: TensorFlow's default (one process)
or a MultiWorkerMirroredStrategy read from TF_CONFIG (one process per worker).

The multi-worker strategy must be made before TensorFlow runs any op in the process (it
configures the collective ops of the runtime when the eager context starts): a process calls
`make_trainer` before it builds a model, predicts or converts anything with TensorFlow. The
strategy is made once per process and reused by every later trainer.
"""

from __future__ import annotations

# TensorFlow comes in through framework.py first, which keeps its start-up logs quiet.
from xgraph_keras.framework import keras  # noqa: F401  # isort: skip

# isort: split
import json
import os

import tensorflow as tf

from xgraph.errors import SpecError
from xgraph.training.replicas import Replicas

_STRATEGIES: dict[str, tf.distribute.Strategy] = {}


def strategy_for(replicas: Replicas) -> tf.distribute.Strategy:
    """TensorFlow's default strategy for one process; for several, the multi-worker one that
    TF_CONFIG describes, exchanging over RING collectives (which run on CPU)."""
    if not replicas.distributed:
        return tf.distribute.get_strategy()
    config = os.environ.get("TF_CONFIG", "")
    workers = json.loads(config or "{}").get("cluster", {}).get("worker", [])
    if len(workers) != replicas.world_size:
        raise SpecError(
            f"data-parallel Keras training needs TF_CONFIG to list {replicas.world_size} "
            f"workers; it lists {len(workers)}"
        )
    if config not in _STRATEGIES:
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING
        )
        try:
            _STRATEGIES[config] = tf.distribute.MultiWorkerMirroredStrategy(
                communication_options=options
            )
        except (RuntimeError, ValueError) as error:
            raise RuntimeError(
                "the multi-worker strategy could not be made; it must be made before "
                f"TensorFlow runs any op in this process ({error})"
            ) from error
    strategy = _STRATEGIES[config]
    if strategy.num_replicas_in_sync != replicas.world_size:
        raise RuntimeError(
            f"TF_CONFIG gives {strategy.num_replicas_in_sync} replicas, the run expects "
            f"{replicas.world_size}"
        )
    return strategy
