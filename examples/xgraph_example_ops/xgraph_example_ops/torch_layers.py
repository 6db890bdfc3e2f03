"""The torch module torch.nn lacks for `channel_affine`; channels are dim 1 (NCHW or NC)."""

from __future__ import annotations

import torch
from torch import nn


class ChannelAffine(nn.Module):
    def __init__(self, channels: int, offset: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels)) if offset else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        y = x * self.weight.view(shape)
        return y if self.bias is None else y + self.bias.view(shape)
