"""Layers that run at a width: the building blocks of
:mod:`algorithms.slimmable`. This module imports torch; import it where a
slimmable model is built."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from algorithms.slimmable import units


class SlimLinear(nn.Linear):
    """Keeps the leading output units at its width (when ``slim_out``) and takes
    however many leading inputs it is given."""

    def __init__(self, n_in: int, n_out: int, slim_out: bool) -> None:
        super().__init__(n_in, n_out)
        self.slim_out, self.slim_width = slim_out, 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = units(self.out_features, self.slim_width) if self.slim_out else self.out_features
        return F.linear(x, self.weight[:out, : x.shape[-1]], self.bias[:out])


class SlimConv1d(nn.Conv1d):
    """Keeps the leading output channels at its width."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(c_in, c_out, kernel, stride=stride, padding=padding)
        self.slim_width = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = units(self.out_channels, self.slim_width)
        w, b = self.weight[:out, : x.shape[1]], self.bias[:out] if self.bias is not None else None
        return F.conv1d(x, w, b, self.stride, self.padding)


class SlimConv2d(nn.Conv2d):
    """Keeps the leading output channels at its width."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(c_in, c_out, kernel, stride=stride, padding=padding)
        self.slim_width = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = units(self.out_channels, self.slim_width)
        w, b = self.weight[:out, : x.shape[1]], self.bias[:out] if self.bias is not None else None
        return F.conv2d(x, w, b, self.stride, self.padding)
