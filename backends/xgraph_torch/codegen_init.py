"""The initialisation a generated torch module starts from: the spec's, not torch's defaults.

`xgraph train` starts from xgraph.weights.initial's draw (Keras's initialisers, with Keras's
fans); a generated module trained from scratch should start from the same distributions
(not the same numbers). `init_weights` is copied into the generated code verbatim, as the
layers.py classes are, and the model's `__init__` ends by calling it.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from xgraph.codegen import python_literal

INIT_FUNCTION = "init_weights"


def init_weights(model: nn.Module, scheme: str = "glorot_uniform") -> None:
    """Initialise as the spec does (as `xgraph train` starts): kernels drawn by Keras's
    `scheme` with Keras's fans, biases zero. A grouped convolution's fans are a Keras
    Conv2D's (in / groups, and the filters, times the window); a depthwise one's (marked
    `keras_depthwise`) count every input channel in, the depth multiplier out. BatchNorm
    starts at gamma 1, beta 0, moving mean 0 and variance 1 as constructed."""
    for module in model.modules():
        if not isinstance(module, nn.Conv2d | nn.Linear):
            continue
        weight = module.weight
        receptive = weight[0][0].numel()
        fan_in, fan_out = weight.shape[1] * receptive, weight.shape[0] * receptive
        if isinstance(module, nn.Conv2d) and getattr(module, "keras_depthwise", False):
            fan_in, fan_out = module.in_channels * receptive, fan_out // module.groups
        scale = {
            "glorot_uniform": 6.0 / (fan_in + fan_out),
            "he_uniform": 6.0 / fan_in,
            "glorot_normal": 2.0 / (fan_in + fan_out),
            "he_normal": 2.0 / fan_in,
            "lecun_normal": 1.0 / fan_in,
        }[scheme]
        with torch.no_grad():
            if scheme.endswith("_uniform"):
                weight.uniform_(-(scale**0.5), scale**0.5)
            else:  # Keras's normal: truncated at two standard deviations
                std = scale**0.5 / 0.87962566103423978
                nn.init.trunc_normal_(weight, 0.0, std, -2 * std, 2 * std)
            if module.bias is not None:
                module.bias.zero_()


def init_source() -> str:
    """`init_weights`' source, for the generated module."""
    return inspect.getsource(init_weights)


def init_call(scheme: str) -> str:
    """The last line of the generated model's `__init__`."""
    return f"        {INIT_FUNCTION}(self, {python_literal(scheme)})"
