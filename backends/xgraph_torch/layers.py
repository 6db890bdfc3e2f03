"""xgraph's torch layers: the modules torch.nn lacks, to reproduce the spec's (Keras's)
semantics, written once for the build and for generated code (xgraph_torch.layer_source copies
their source into a generated module, so they import nothing but torch, nn and F). The
normalisation and preprocessing modules live in xgraph_torch.norm_layers, imported here.

Subclasses keep torch's own parameter names (`weight`, `bias`), so state dicts read like any
PyTorch model's. Tensors are channels-first: (N, C, H, W) for (H, W, C) in the spec. A layer
that pads takes `pad`: fixed (left, right, top, bottom) amounts, or "same", TensorFlow's
padding worked out from each input's size, so a module built for one size runs at any.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xgraph_torch.norm_layers import (  # noqa: F401  (modules the rules name here)
    BatchNorm,
    LayerNorm,
    LayerScale,
    Normalization,
    Rescaling,
    per_channel,
)

Pad = tuple[int, ...] | str


def same_pad_amounts(
    size: tuple[int, int],
    kernel_size: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...] = (1, 1),
) -> tuple[int, int, int, int]:
    """TensorFlow's 'same' padding for an input of `size` (height, width): the output is
    ceil(size / stride), the extra pixel goes at the bottom/right. Shape arithmetic only, so
    torch.export and torch.compile trace it without looking at tensor values."""
    amounts = []
    for axis in (1, 0):  # F.pad's order: the last dim (width) first
        span = (kernel_size[axis] - 1) * dilation[axis] + 1
        # ceil(size / stride) in non-negative integers: sizes may be symbolic, and ONNX's
        # integer division (what torch.onnx.export makes of //) truncates
        out = (size[axis] + stride[axis] - 1) // stride[axis]
        total = max((out - 1) * stride[axis] + span - size[axis], 0)
        amounts += [total // 2, total - total // 2]
    return (amounts[0], amounts[1], amounts[2], amounts[3])


def pad_input(
    x: torch.Tensor,
    pad: Pad,
    kernel_size: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...] = (1, 1),
    value: float = 0.0,
) -> torch.Tensor:
    """`x` padded by explicit amounts, or by TensorFlow's 'same' for its own size."""
    if isinstance(pad, str):  # padded even by nothing: no branch on the (symbolic) size
        amounts = same_pad_amounts((x.shape[-2], x.shape[-1]), kernel_size, stride, dilation)
        return F.pad(x, amounts, value=value)
    return F.pad(x, pad, value=value) if any(pad) else x


def as_pad(pad: Pad) -> Pad:
    """`pad` checked, as a tuple where it is amounts (a list would not compare equal)."""
    if isinstance(pad, str) and pad != "same":
        raise ValueError(f"pad must be 'same' or (left, right, top, bottom) amounts, got {pad!r}")
    return pad if isinstance(pad, str) else tuple(pad)


def pair(value: int | tuple[int, ...]) -> tuple[int, ...]:
    return (value, value) if isinstance(value, int) else tuple(value)


class Conv2d(nn.Conv2d):
    """nn.Conv2d after explicit or TensorFlow 'same' padding (`pad`), with an optional fused
    activation (Keras's `activation` argument); `padding` is torch's symmetric one."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        pad: Pad = (0, 0, 0, 0),
        activation: nn.Module | None = None,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias
        )
        self.pad = as_pad(pad)
        self.activation = activation if activation is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pad_input(x, self.pad, self.kernel_size, self.stride, self.dilation)
        return self.activation(super().forward(x))


class DepthwiseConv2d(Conv2d):
    """Conv2d with a group per input channel (Keras DepthwiseConv2D): a class of its
    own, as Keras counts a depthwise kernel's fans otherwise than a grouped Conv2D's
    though both compute alike; initialisers tell them apart by `keras_depthwise`."""

    keras_depthwise = True


class SeparableConv2d(nn.Module):
    """Depthwise then pointwise convolution with nothing between them (Keras SeparableConv2D)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        depth_multiplier: int = 1,
        bias: bool = True,
        pad: Pad = (0, 0, 0, 0),
        activation: nn.Module | None = None,
    ) -> None:
        super().__init__()
        middle = in_channels * depth_multiplier
        self.depthwise = DepthwiseConv2d(
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
        self.pointwise = nn.Conv2d(middle, out_channels, 1, bias=bias)
        self.activation = activation if activation is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.pointwise(self.depthwise(x)))


class MaxPool2d(nn.MaxPool2d):
    """Max pooling after explicit or TensorFlow 'same' padding that never wins a maximum."""

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        pad: Pad = (0, 0, 0, 0),
    ) -> None:
        super().__init__(kernel_size, stride, padding)
        self.pad = as_pad(pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = pair(self.kernel_size), pair(self.stride)
        return super().forward(pad_input(x, self.pad, k, s, value=float("-inf")))


class AvgPool2d(nn.Module):
    """Average pooling after explicit or TensorFlow 'same' padding, which, as in TensorFlow,
    no average counts."""

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        pad: Pad = (0, 0, 0, 0),
    ) -> None:
        super().__init__()
        self.kernel_size = pair(kernel_size)
        self.stride = pair(stride if stride is not None else kernel_size)
        self.pad = as_pad(pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size, self.stride
        if not isinstance(self.pad, str) and not any(self.pad):
            return F.avg_pool2d(x, k, s)
        total = F.avg_pool2d(pad_input(x, self.pad, k, s), k, s, divisor_override=1)
        ones = pad_input(torch.ones_like(x[:1, :1]), self.pad, k, s)
        return total / F.avg_pool2d(ones, k, s, divisor_override=1)


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


class Linear(nn.Linear):
    """nn.Linear with an optional fused activation, as Keras's Dense has. On an image it acts
    on the channels, as Dense acts on the last axis: the activation comes after the channels
    are moved back to dim 1, where a softmax (dim=1) normalises them."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: nn.Module | None = None,
    ) -> None:
        super().__init__(in_features, out_features, bias)
        self.activation = activation if activation is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() > 2:  # channels last for the product, then back to dim 1
            return self.activation(super().forward(x.movedim(1, -1)).movedim(-1, 1))
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


class ScaledAdd(nn.Module):
    """x + scale * branch: a residual branch scaled by a constant (InceptionResNetV2)."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def extra_repr(self) -> str:
        return f"scale={self.scale}"

    def forward(self, x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        return x + branch * self.scale


class Cropping2d(nn.Module):
    """Keras's Cropping2D: `cropping` rows and columns, ((top, bottom), (left, right)), cut
    off height and width (dims 2 and 3); the ends count from each input's own size."""

    def __init__(self, cropping: tuple[tuple[int, int], tuple[int, int]]) -> None:
        super().__init__()
        (self.top, self.bottom), (self.left, self.right) = cropping

    def extra_repr(self) -> str:
        return f"cropping={((self.top, self.bottom), (self.left, self.right))}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[2], x.shape[3]
        return x[:, :, self.top : height - self.bottom, self.left : width - self.right]


class Concat(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.cat(inputs, dim=self.dim)


class Multiply(nn.Module):
    """The product of inputs of one rank, broadcast as in NumPy (an SE gate's (N, C, 1, 1))."""

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        product = inputs[0]
        for value in inputs[1:]:
            product = product * value
        return product


class Dropout(nn.Module):
    """Dropout with a noise shape (batch excluded, channels-first, 1 where one draw is
    shared): (1, 1, 1) drops whole examples, as Keras's noise_shape (None, 1, 1, 1) does.
    Kept values are scaled by 1 / (1 - p), as nn.Dropout and Keras do."""

    def __init__(self, p: float, noise_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.p, self.noise_shape = p, tuple(noise_shape)

    def extra_repr(self) -> str:
        return f"p={self.p}, noise_shape={self.noise_shape}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty((x.shape[0], *self.noise_shape), dtype=x.dtype, device=x.device)
        return x * mask.bernoulli_(keep) / keep
