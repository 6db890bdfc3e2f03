"""The few torch modules that torch.nn lacks, to reproduce the spec's (Keras's) semantics.

Subclasses keep torch's own parameter names (`weight`, `bias`), so state dicts read like any
PyTorch model's. Tensors are channels-first: (N, C, H, W) for (H, W, C) in the spec.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xgraph_torch.rules.activation import ACTIVATION_LAYERS

PadAmounts = tuple[int, int, int, int]  # left, right, top, bottom, as F.pad takes them


# Fused activations that may overwrite their input: the layer's output is a fresh tensor
# nobody else holds, and ReLU's gradient needs only its result (activations whose gradient
# needs their input, such as SiLU, must not overwrite it).
IN_PLACE = frozenset({"relu"})


def activation_module(name: str) -> nn.Module:
    """A fused activation, from the same table as the `activation` op's lowering, applied in
    place where that is safe (one tensor fewer per layer)."""
    module = ACTIVATION_LAYERS[name].instantiate()
    if name in IN_PLACE:
        module.inplace = True
    return module


class Conv2d(nn.Conv2d):
    """nn.Conv2d plus TensorFlow's asymmetric 'same' padding and a fused activation."""

    def __init__(
        self, *args, pad: PadAmounts = (0, 0, 0, 0), activation: str = "linear", **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.pad = tuple(pad)
        self.activation = activation_module(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad)
        return self.activation(super().forward(x))


class SeparableConv2d(nn.Module):
    """Depthwise then pointwise convolution with nothing between them (Keras SeparableConv2D)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int],
        stride: tuple[int, int] = (1, 1),
        padding: tuple[int, int] = (0, 0),
        dilation: tuple[int, int] = (1, 1),
        depth_multiplier: int = 1,
        bias: bool = True,
        pad: PadAmounts = (0, 0, 0, 0),
        activation: str = "linear",
    ) -> None:
        super().__init__()
        middle = in_channels * depth_multiplier
        self.depthwise = Conv2d(
            in_channels,
            middle,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=in_channels,
            bias=False,
            pad=pad,
        )
        self.pointwise = Conv2d(middle, out_channels, 1, bias=bias, activation=activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class MaxPool2d(nn.MaxPool2d):
    """Max pooling whose 'same' padding may be asymmetric; padding never wins a maximum."""

    def __init__(self, *args, pad: PadAmounts = (0, 0, 0, 0), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pad = tuple(pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad, value=float("-inf"))
        return super().forward(x)


class AvgPool2d(nn.Module):
    """Average pooling that, like TensorFlow, leaves padded positions out of each average."""

    def __init__(
        self, kernel_size: tuple[int, int], stride: tuple[int, int], pad: PadAmounts = (0, 0, 0, 0)
    ) -> None:
        super().__init__()
        self.kernel_size = tuple(kernel_size)
        self.stride = tuple(stride)
        self.pad = tuple(pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not any(self.pad):
            return F.avg_pool2d(x, self.kernel_size, self.stride)
        total = F.avg_pool2d(F.pad(x, self.pad), self.kernel_size, self.stride, divisor_override=1)
        ones = F.pad(torch.ones_like(x[:1, :1]), self.pad)
        count = F.avg_pool2d(ones, self.kernel_size, self.stride, divisor_override=1)
        return total / count


class GlobalPool(nn.Module):
    """Mean or max over height and width, optionally keeping them as 1x1."""

    def __init__(self, mode: str, keepdims: bool = False) -> None:
        super().__init__()
        self.mode = mode
        self.keepdims = keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "avg":
            return x.mean(dim=(2, 3), keepdim=self.keepdims)
        return x.amax(dim=(2, 3), keepdim=self.keepdims)


class BatchNorm(nn.modules.batchnorm._BatchNorm):
    """Keras's BatchNormalization over dim 1, for any rank: separate `center` and `scale`,
    and in training the moving variance follows the biased batch variance, as Keras's does
    (torch's own BatchNorm uses the unbiased one), so both frameworks train alike."""

    # Always tracked (track_running_stats), and the momentum is always given.
    running_mean: torch.Tensor
    running_var: torch.Tensor
    num_batches_tracked: torch.Tensor
    momentum: float

    def __init__(
        self,
        num_features: int,
        eps: float,
        momentum: float,
        center: bool = True,
        scale: bool = True,
    ) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum, affine=False)
        # As assigning them does; torch types weight and bias as Parameter, never None.
        self.register_parameter("weight", nn.Parameter(torch.ones(num_features)) if scale else None)
        self.register_parameter("bias", nn.Parameter(torch.zeros(num_features)) if center else None)

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected a batched input of at least 2 dims, got {input.dim()}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        reduce = [0, *range(2, x.dim())]
        mean = x.mean(dim=reduce)
        variance = x.var(dim=reduce, unbiased=False)
        with torch.no_grad():
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(variance, self.momentum)
            self.num_batches_tracked += 1
        shape = (1, -1) + (1,) * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(variance.view(shape) + self.eps)
        if self.weight is not None:
            y = y * self.weight.view(shape)
        if self.bias is not None:
            y = y + self.bias.view(shape)
        return y


class Linear(nn.Linear):
    """nn.Linear with a fused activation, as Keras's Dense has."""

    def __init__(self, *args, activation: str = "linear", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.activation = activation_module(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() > 2:  # Dense acts on the last (channel) axis: move channels last and back.
            return self.activation(super().forward(x.movedim(1, -1))).movedim(-1, 1)
        return self.activation(super().forward(x))


class FlattenChannelsLast(nn.Module):
    """Flattens in (H, W, C) order, so a following dense layer's weights match Keras's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.movedim(1, -1).flatten(1)


class ReshapeChannelsLast(nn.Module):
    """Keras's Reshape on a channels-first tensor: the values are read and written in
    (H, W, C) order, `shape` being the target's (H, W, C) shape, batch excluded."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() > 2:
            x = x.movedim(1, -1)
        x = x.reshape(x.shape[0], *self.shape)
        return x.movedim(-1, 1) if x.dim() > 2 else x


class Add(nn.Module):
    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        total = inputs[0]
        for value in inputs[1:]:
            total = total + value
        return total


class Concat(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.cat(inputs, dim=self.dim)
