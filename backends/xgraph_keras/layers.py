"""xgraph's own Keras layers and activations, for what Keras has no built-in for.

Each is registered as serializable (package "xgraph"), so a `.keras` file that holds one loads
wherever `xgraph_keras` is importable (`import xgraph_keras.layers` before
`keras.saving.load_model`); generated Keras code carries a copy of the class instead (the
decorator removed). Ops a built-in layer computes exactly stay built-in, so most files load
in plain Keras.
"""

from __future__ import annotations

from typing import Any

from xgraph_keras.framework import keras


@keras.saving.register_keras_serializable(package="xgraph")
class LayerScale(keras.layers.Layer):
    """x * gamma, gamma learnt per channel (the last axis) and starting at `init_value`:
    what keras.applications' ConvNeXt calls LayerScale, with the same single weight."""

    def __init__(self, init_value: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.init_value = init_value

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.gamma = self.add_weight(
            shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.init_value),
            trainable=True,
            name="gamma",
        )

    def call(self, x: Any) -> Any:
        return x * self.gamma

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "init_value": self.init_value}


@keras.saving.register_keras_serializable(package="xgraph")
def gelu_tanh(x: Any) -> Any:
    """GELU's tanh approximation, the spec's `gelu_tanh`: Keras names only the exact GELU
    ("gelu"); its approximate one is this function's argument."""
    return keras.activations.gelu(x, approximate=True)


# The spec's activation names that are functions here, not names Keras knows.
ACTIVATION_FUNCTIONS = {"gelu_tanh": gelu_tanh}
