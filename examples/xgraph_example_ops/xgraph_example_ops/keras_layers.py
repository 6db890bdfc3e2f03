"""The Keras layer for `channel_affine`, registered so that saved `.keras` models load."""

from __future__ import annotations

from typing import Any

from xgraph_keras.framework import keras


@keras.saving.register_keras_serializable(package="xgraph_example_ops")
class ChannelAffine(keras.layers.Layer):
    """y = x * scale (+ offset), per channel (the last axis)."""

    def __init__(self, offset: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.offset = offset

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        channels = (input_shape[-1],)
        self.scale = self.add_weight(name="scale", shape=channels, initializer="ones")
        if self.offset:
            self.shift = self.add_weight(name="offset", shape=channels, initializer="zeros")

    def call(self, x: Any) -> Any:
        y = x * self.scale
        return y + self.shift if self.offset else y

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "offset": self.offset}
