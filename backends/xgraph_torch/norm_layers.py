"""xgraph's torch modules for normalisation and preprocessing, on channels-first tensors:
Keras's BatchNormalization, Rescaling, Normalization and LayerNormalization, and LayerScale.
xgraph_torch.layers re-exports them: rules name every module of the build there."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BatchNorm(nn.Module):
    """Keras's BatchNormalization over dim 1, for any rank: separate `center` and `scale`,
    Keras's epsilon, torch's momentum (Keras's 0.99 is 0.01 here), and in training the
    moving variance follows the biased batch variance, as Keras's does (torch's own
    BatchNorm uses the unbiased one), so both frameworks train alike. Its state dict keys
    are nn.BatchNorm2d's."""

    running_mean: torch.Tensor
    running_var: torch.Tensor
    num_batches_tracked: torch.Tensor

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-3,
        momentum: float = 0.01,
        center: bool = True,
        scale: bool = True,
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(num_features)) if scale else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if center else None
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype in (torch.bfloat16, torch.float16):  # autocast: float32 statistics, as Keras's
            return self.forward(x.float()).to(x.dtype)
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


def per_channel(
    values: float | tuple[float, ...] | torch.Tensor, like: torch.Tensor
) -> torch.Tensor:
    """A number or per-channel values shaped to broadcast over `like`'s dim 1."""
    tensor = torch.as_tensor(values, dtype=like.dtype, device=like.device)
    return tensor.reshape(-1, *(1,) * (like.dim() - 2)) if tensor.dim() else tensor


class Rescaling(nn.Module):
    """x * scale + offset, each a number or one per channel (Keras's Rescaling)."""

    def __init__(
        self, scale: float | tuple[float, ...], offset: float | tuple[float, ...] = 0.0
    ) -> None:
        super().__init__()
        self.scale, self.offset = scale, offset

    def extra_repr(self) -> str:
        return f"scale={self.scale}, offset={self.offset}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * per_channel(self.scale, x) + per_channel(self.offset, x)


class Normalization(nn.Module):
    """(x - mean) / max(sqrt(variance), 1e-7) per channel (Keras's Normalization). Given
    constants stay numbers of the module; otherwise mean, variance and Keras's count (a float
    here, so it counts as a weight as Keras counts it) are buffers read from the weights."""

    mean: torch.Tensor
    variance: torch.Tensor

    def __init__(
        self,
        num_features: int,
        mean: tuple[float, ...] | None = None,
        variance: tuple[float, ...] | None = None,
    ) -> None:
        super().__init__()
        self.constants = (mean, variance) if mean is not None and variance is not None else None
        if self.constants is None:
            self.register_buffer("mean", torch.zeros(num_features))
            self.register_buffer("variance", torch.ones(num_features))
            self.register_buffer("count", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, variance = self.constants or (self.mean, self.variance)
        spread = torch.sqrt(per_channel(variance, x)).clamp(min=1e-7)
        return (x - per_channel(mean, x)) / spread


class LayerNorm(nn.Module):
    """Keras's LayerNormalization of the channels, dim 1 of a channels-first tensor: each
    position normalised by its channels' mean and biased variance. nn.LayerNorm normalises
    the last dims, and cannot have a shift without a scale; `weight` and `bias` are its names."""

    def __init__(
        self, num_features: int, eps: float = 1e-3, center: bool = True, scale: bool = True
    ) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features)) if scale else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if center else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        variance = (x - mean).square().mean(dim=1, keepdim=True)
        y = (x - mean) * torch.rsqrt(variance + self.eps)
        if self.weight is not None:
            y = y * per_channel(self.weight, y)
        if self.bias is not None:
            y = y + per_channel(self.bias, y)
        return y


class LayerScale(nn.Module):
    """x * gamma, gamma learnt per channel (dim 1) and starting at `init_value`."""

    def __init__(self, num_features: int, init_value: float = 1e-6) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((num_features,), init_value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * per_channel(self.gamma, x)
