# The torch modules a generated model may need beyond torch.nn, one class each; the code
# generator copies into a module only the classes it uses. They reproduce, with the same
# parameter and buffer names, what xgraph_torch.layers does for the xgraph build.
import torch
import torch.nn.functional as F
from torch import nn


class PaddedConv2d(nn.Conv2d):
    """nn.Conv2d after explicit (left, right, top, bottom) zero padding: TensorFlow's "same"."""

    def __init__(self, *args, pad=(0, 0, 0, 0), **kwargs):
        super().__init__(*args, **kwargs)
        self.pad = pad

    def forward(self, x):
        if any(self.pad):
            x = F.pad(x, self.pad)
        return super().forward(x)


class SeparableConv2d(nn.Module):
    """Keras's SeparableConv2D: a depthwise then a pointwise convolution, nothing between."""

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        depth_multiplier=1,
        bias=True,
        pad=(0, 0, 0, 0),
    ):
        super().__init__()
        middle = in_channels * depth_multiplier
        self.depthwise = nn.Conv2d(
            in_channels, middle, kernel_size, stride, padding, dilation, in_channels, bias=False
        )
        self.pointwise = nn.Conv2d(middle, out_channels, 1, bias=bias)
        self.pad = pad

    def forward(self, x):
        if any(self.pad):
            x = F.pad(x, self.pad)
        return self.pointwise(self.depthwise(x))


class PaddedMaxPool2d(nn.MaxPool2d):
    """nn.MaxPool2d after explicit (left, right, top, bottom) padding that never wins."""

    def __init__(self, *args, pad=(0, 0, 0, 0), **kwargs):
        super().__init__(*args, **kwargs)
        self.pad = pad

    def forward(self, x):
        if any(self.pad):
            x = F.pad(x, self.pad, value=float("-inf"))
        return super().forward(x)


class AvgPool2d(nn.Module):
    """Average pooling that, as TensorFlow's, leaves padded positions out of each average."""

    def __init__(self, kernel_size, stride, pad=(0, 0, 0, 0)):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.pad = pad

    def forward(self, x):
        if not any(self.pad):
            return F.avg_pool2d(x, self.kernel_size, self.stride)
        total = F.avg_pool2d(F.pad(x, self.pad), self.kernel_size, self.stride, divisor_override=1)
        ones = F.pad(torch.ones_like(x[:1, :1]), self.pad)
        count = F.avg_pool2d(ones, self.kernel_size, self.stride, divisor_override=1)
        return total / count


class BatchNorm(nn.modules.batchnorm._BatchNorm):
    """Keras's BatchNormalization over dim 1 (its momentum 0.99 is torch's 0.01); in training
    the moving variance follows the biased batch variance, as Keras's does."""

    def __init__(self, num_features, eps=1e-3, momentum=0.01, center=True, scale=True):
        super().__init__(num_features, eps, momentum, affine=False)
        self.weight = nn.Parameter(torch.ones(num_features)) if scale else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if center else None

    def forward(self, x):
        if not self.training:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        dims = [0, *range(2, x.dim())]
        mean, variance = x.mean(dims), x.var(dims, unbiased=False)
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
