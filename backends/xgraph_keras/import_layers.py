"""Keras layer configs as xgraph ops: the reverse of the keras rules, one reader per Keras
class that keras.applications uses (and the few more a user's model commonly has). A reader
gets the layer's `config` mapping as the file holds it, unchecked, and returns the op and
its attributes; the op's attribute model checks the values when the spec is read back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Keras activation names (Keras 3 and 2) -> the spec's.
ACTIVATIONS = {
    "linear": "linear",
    "relu": "relu",
    "relu6": "relu6",
    "sigmoid": "sigmoid",
    "hard_sigmoid": "hard_sigmoid",
    "tanh": "tanh",
    "softmax": "softmax",
    "swish": "swish",
    "silu": "swish",
    "hard_swish": "hard_swish",
    "hard_silu": "hard_swish",
    "gelu": "gelu",
    "xgraph>gelu_tanh": "gelu_tanh",
}


class Refused(Exception):
    """A layer whose settings no xgraph op computes: the reason, and the nearest op."""

    def __init__(self, reason: str, nearest: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.nearest = nearest


def activation(config: dict[str, Any], key: str = "activation") -> str:
    value = config.get(key, "linear")
    if value is None:
        return "linear"
    if isinstance(value, dict):  # a registered function: {"config": name, "registered_name"}
        value = value.get("registered_name") or value.get("config")
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise Refused(f"activation {value!r}", "activation")
    return ACTIVATIONS[value]


def _channels_last(config: dict[str, Any]) -> None:
    if config.get("data_format", "channels_last") not in ("channels_last", None):
        raise Refused(f"data_format {config.get('data_format')!r}: channels_first")


def _window(config: dict[str, Any]) -> dict[str, Any]:
    _channels_last(config)
    return {
        "kernel_size": config.get("kernel_size"),
        "strides": config.get("strides", 1),
        "padding": config.get("padding", "valid"),
        "dilation_rate": config.get("dilation_rate", 1),
        "use_bias": config.get("use_bias", True),
        "activation": activation(config),
    }


def conv2d(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    attrs = {**_window(config), "filters": config.get("filters"), "groups": config.get("groups", 1)}
    return "conv2d", attrs


def depthwise_conv2d(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    attrs = {**_window(config), "depth_multiplier": config.get("depth_multiplier", 1)}
    return "depthwise_conv2d", attrs


def separable_conv2d(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    attrs = {
        **_window(config),
        "filters": config.get("filters"),
        "depth_multiplier": config.get("depth_multiplier", 1),
    }
    return "separable_conv2d", attrs


def _last_axis(config: dict[str, Any], op: str) -> None:
    axis = config.get("axis", -1)
    if isinstance(axis, list) and len(axis) == 1:
        axis = axis[0]
    if axis not in (-1, 3):
        raise Refused(f"axis {axis!r}: xgraph normalises over the channels (the last axis)", op)


def batch_norm(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    _last_axis(config, "batch_norm")
    keys = ("epsilon", "momentum", "center", "scale")
    return "batch_norm", {key: config[key] for key in keys if key in config}


def layer_norm(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    _last_axis(config, "layer_norm")
    keys = ("epsilon", "center", "scale")
    return "layer_norm", {key: config[key] for key in keys if key in config}


def activation_layer(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "activation", {"activation": activation(config)}


def relu(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Keras's ReLU layer: plain, or capped at 6 (MobileNet's ReLU(6.))."""
    top = config.get("max_value")
    if config.get("negative_slope", 0.0) or config.get("threshold", 0.0):
        raise Refused("ReLU with a negative slope or a threshold", "prelu")
    if top is None:
        return "activation", {"activation": "relu"}
    if top == 6:
        return "activation", {"activation": "relu6"}
    raise Refused(f"ReLU capped at {top!r} (xgraph has relu6)", "activation")


def _pool(op: str) -> Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]:
    def read(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        _channels_last(config)
        keys = ("pool_size", "strides", "padding")
        return op, {key: config[key] for key in keys if key in config}

    return read


def _global(op: str) -> Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]:
    def read(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        _channels_last(config)
        return op, {"keepdims": config.get("keepdims", False)}

    return read


def dense(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    attrs = {
        "units": config.get("units"),
        "use_bias": config.get("use_bias", True),
        "activation": activation(config),
    }
    return "dense", attrs


def dropout(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Keras's noise_shape counts the batch (EfficientNet's (None, 1, 1, 1)); xgraph's not."""
    noise = config.get("noise_shape")
    if isinstance(noise, list) and noise:
        noise = noise[1:]
    return "dropout", {"rate": config.get("rate"), "noise_shape": noise}


def concat(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Keras's axis, which counts the batch (the importer makes it the spec's)."""
    return "concat", {"axis": config.get("axis", -1)}


def spec_axis(axis: Any, rank: int | None) -> Any:
    """Keras's axis of a tensor of `rank` (batch included) as the spec's, which leaves the
    batch out: 3 of an image is -1, as a person writes it; without the rank (a Keras 2
    file), one less."""
    if not isinstance(axis, int) or axis <= 0:
        return axis
    return axis - rank if rank else axis - 1


def zero_pad2d(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    _channels_last(config)
    return "zero_pad2d", {"padding": config.get("padding", 1)}


def cropping2d(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    _channels_last(config)
    return "cropping2d", {"cropping": config.get("cropping", 0)}


def rescaling(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "rescaling", {"scale": config.get("scale"), "offset": config.get("offset", 0.0)}


def normalization(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    _last_axis(config, "normalization")
    if config.get("invert"):
        raise Refused("Normalization with invert=True", "rescaling")
    return "normalization", {"mean": config.get("mean"), "variance": config.get("variance")}


def reshape(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "reshape", {"target_shape": config.get("target_shape")}


def layer_scale(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "layer_scale", {"init_value": config.get("init_values", config.get("init_value"))}


def stochastic_depth(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "stochastic_depth", {"rate": config.get("drop_path_rate", config.get("rate"))}


def scaled_add(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """InceptionResNetV2's CustomScaleLayer: inputs[0] + scale * inputs[1]."""
    return "scaled_add", {"scale": config.get("scale")}


def _plain(op: str) -> Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]:
    return lambda config: (op, {})


READERS: dict[str, Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]] = {
    "Conv2D": conv2d,
    "DepthwiseConv2D": depthwise_conv2d,
    "SeparableConv2D": separable_conv2d,
    "BatchNormalization": batch_norm,
    "LayerNormalization": layer_norm,
    "Activation": activation_layer,
    "ReLU": relu,
    "MaxPooling2D": _pool("max_pool2d"),
    "AveragePooling2D": _pool("avg_pool2d"),
    "GlobalAveragePooling2D": _global("global_avg_pool"),
    "GlobalMaxPooling2D": _global("global_max_pool"),
    "Dense": dense,
    "Dropout": dropout,
    "Flatten": _plain("flatten"),
    "Add": _plain("add"),
    "Multiply": _plain("multiply"),
    "Concatenate": concat,
    "ZeroPadding2D": zero_pad2d,
    "Cropping2D": cropping2d,
    "Rescaling": rescaling,
    "Normalization": normalization,
    "Reshape": reshape,
    "PReLU": _plain("prelu"),
    # keras.applications' own layers (ConvNeXt, InceptionResNetV2): Keras's code, not the file's
    "LayerScale": layer_scale,
    "StochasticDepth": stochastic_depth,
    "CustomScaleLayer": scaled_add,
}

# Classes a user may expect to work, and the op nearest to each (the hint of the refusal).
NEAREST = {
    "Conv1D": "conv2d",
    "Conv3D": "conv2d",
    "Conv2DTranspose": "conv2d",
    "UpSampling2D": "zero_pad2d",
    "LeakyReLU": "prelu",
    "ELU": "activation",
    "Softmax": "activation",
    "GroupNormalization": "layer_norm",
    "SpatialDropout2D": "dropout",
    "GaussianNoise": "dropout",
    "Subtract": "add",
    "Average": "add",
    "Maximum": "add",
    "Permute": "reshape",
    "Lambda": None,
    "TFOpLambda": None,
}


def constant_arithmetic(cls: str, constant: float) -> tuple[str, dict[str, Any]]:
    """Keras 3's tensor arithmetic with a number (`x + 3.`, `x * (1. / 6.)`: MobileNetV3's
    hard sigmoid), which the file records as operations, as a `rescaling`."""
    if cls == "Add":
        return "rescaling", {"scale": 1.0, "offset": constant}
    if cls == "Subtract":
        return "rescaling", {"scale": 1.0, "offset": -constant}
    if cls == "Multiply":
        return "rescaling", {"scale": constant, "offset": 0.0}
    if cls in ("Divide", "TrueDivide") and constant != 0:
        return "rescaling", {"scale": 1.0 / constant, "offset": 0.0}
    raise Refused(f"the operation {cls} with the number {constant!r}", "rescaling")


# Keras 3 operations between two tensors (`inputs + x`: ConvNeXt's residual sums).
TENSOR_OPERATIONS = {"Add": "add", "Multiply": "multiply"}
