"""`--device` and `--precision` for Keras: TensorFlow's placement, or the device named, and
Keras's mixed-precision policies."""

from __future__ import annotations

# TensorFlow comes in through framework.py first, which keeps its start-up logs quiet.
from xgraph_keras.framework import keras  # isort: skip

# isort: split
import contextlib
from collections.abc import Iterator

import tensorflow as tf

from xgraph.errors import SpecError
from xgraph.training.placement import FP16_HINT, FP16_ON_CPU, Placement
from xgraph.training.replicas import Replicas

# Keras's own mixed-precision policies: float32 variables, computations in the narrow type.
POLICIES = {"bf16-mixed": "mixed_bfloat16", "fp16-mixed": "mixed_float16"}


def device_scope(placement: Placement, replicas: Replicas) -> str | None:
    """The TensorFlow device `--device` names, or None for TensorFlow's own placement (a GPU
    when it sees one): `cpu` is /CPU:0, `cuda:N` /GPU:N; Apple's GPUs reach TensorFlow only
    through the tensorflow-metal plugin, as GPU devices."""
    requested = placement.device
    if requested == "auto":
        return None
    if replicas.distributed:
        raise SpecError(
            f"--device {requested}: data-parallel Keras places each worker's replica itself "
            "(tf.distribute)",
            hint="--device auto",
        )
    if requested == "cpu":
        return "/CPU:0"
    gpus = tf.config.list_physical_devices("GPU")
    if requested == "mps":
        raise SpecError(
            "--device mps: TensorFlow has no MPS device (with tensorflow-metal, Apple's GPU is "
            "a GPU device)",
            hint="--device auto",
        )
    index = placement.device_index or 0
    if index >= len(gpus):
        raise SpecError(
            f"--device {requested}: TensorFlow sees {len(gpus)} GPU(s)",
            hint="--device cpu, or auto (a GPU when TensorFlow sees one)",
        )
    return f"/GPU:{index}"


def check_precision(placement: Placement, scope: str | None) -> None:
    """fp16-mixed only where a GPU computes: TensorFlow would run it on the CPU, slowly."""
    on_gpu = scope.startswith("/GPU") if scope else bool(tf.config.list_physical_devices("GPU"))
    if placement.precision == "fp16-mixed" and not on_gpu:
        raise SpecError(FP16_ON_CPU, hint=FP16_HINT)


@contextlib.contextmanager
def dtype_policy(precision: str) -> Iterator[None]:
    """Keras's global dtype policy set for the layers built inside, then restored."""
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(POLICIES.get(precision, "float32"))
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)
