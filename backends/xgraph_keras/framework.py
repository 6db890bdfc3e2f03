"""Keras on TensorFlow, imported once and quietly: import `keras` from here.

`KERAS_BACKEND` is read when keras is first imported, so it is set before that import.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """TensorFlow 2.21 logs from C++ at import whatever TF_CPP_MIN_LOG_LEVEL says; keep the
    CLI's output readable. Python exceptions still propagate."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


if "keras" not in sys.modules:
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _native_stderr_silenced():
        import tensorflow  # noqa: F401

import keras  # noqa: E402 (after choosing Keras's backend)

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"xgraph's keras backend needs Keras on TensorFlow; Keras was already imported with "
        f"the '{keras.backend.backend()}' backend"
    )

__all__ = ["keras"]
