"""Slimmable models: one set of weights, run at any width ``p`` in
``[p_min, 1]``. The sub-network of width ``p`` keeps the leading
``ceil(p * n)`` units of every hidden layer (channels of every convolution),
so sub-networks of different widths share their weights (Yu et al.,
"Slimmable neural networks", ICLR 2019; the models Aequa rewards with,
``papers.md`` section 4).

- ``mlp``: one hidden layer of ``hidden`` units, slimmed;
- ``cnn``: the convolutions of :mod:`algorithms.models` (images: 8 and 16
  channels; signals: three of ``hidden``), every one slimmed.

The input and the classes are never slimmed. At width 1 a slimmable model
computes exactly what the dense model of :mod:`algorithms.models` with the
same weights computes. FLOPs at a width are counted by torch's FLOP counter
on the sliced operations themselves (:func:`flops_at`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from netsim.errors import InputError

if TYPE_CHECKING:  # torch is imported where it is used: it takes seconds to load
    import torch
    from torch import nn

SLIMMABLE = ("mlp", "cnn")


def units(n: int, width: float) -> int:
    """Units of a layer of ``n`` kept at ``width``: ``ceil(width * n)``, at least one."""
    return max(1, min(n, math.ceil(width * n - 1e-9)))


def set_width(model: nn.Module, width: float) -> None:
    """Run ``model`` at ``width`` from now on."""
    if not 0 < width <= 1:
        raise ValueError(f"width: expected a number in (0, 1], got {width!r}")
    for m in model.modules():
        if hasattr(m, "slim_width"):
            setattr(m, "slim_width", width)  # noqa: B010  (torch types the attribute as a module)


def build(
    name: str, input_shape: tuple[int, ...], classes: int, seed: int, hidden: int
) -> nn.Module:
    """The slimmable ``name`` model, initialised from ``seed`` like its dense twin."""
    import torch
    from torch import nn

    from algorithms.slim_layers import SlimConv1d, SlimConv2d, SlimLinear

    features = int(np.prod(input_shape))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if name == "mlp":
            return nn.Sequential(
                nn.Flatten(),
                SlimLinear(features, hidden, slim_out=True),
                nn.ReLU(),
                SlimLinear(hidden, classes, slim_out=False),
            )
        if name != "cnn":
            raise InputError(
                f"slimmable model: expected one of {', '.join(SLIMMABLE)}, got {name!r}"
            )
        if len(input_shape) == 2:  # signals: three strided 1-D convolutions
            c, length = input_shape
            convs: list[nn.Module] = []
            for i in range(3):
                convs += [SlimConv1d(c if i == 0 else hidden, hidden, 5, 2, 2), nn.ReLU()]
                length = (length + 4 - 5) // 2 + 1
            return nn.Sequential(
                *convs, nn.Flatten(), SlimLinear(hidden * length, classes, slim_out=False)
            )
        c, h, w = input_shape
        return nn.Sequential(
            SlimConv2d(c, 8, 3, 1, 1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            SlimConv2d(8, 16, 3, 1, 1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            SlimLinear(16 * (h // 4) * (w // 4), classes, slim_out=False),
        )


def flops_at(model: nn.Module, width: float, input_shape: tuple[int, ...], classes: int) -> float:
    """FLOPs of a training step (forward and backward) per example at ``width``."""
    from algorithms import models

    set_width(model, width)
    try:
        return models.training_flops_per_sample(model, input_shape, classes)
    finally:
        set_width(model, 1.0)


class WidthCost:
    """FLOPs of a training step per example at any width, counted once per
    distinct sub-network (widths that keep the same units cost the same)."""

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], classes: int) -> None:
        self.model, self.input_shape, self.classes = model, input_shape, classes
        self.sizes = [
            int(getattr(m, "out_channels", getattr(m, "out_features", 0)))
            for m in model.modules()
            if getattr(m, "slim_width", None) is not None and getattr(m, "slim_out", True)
        ]
        self._known: dict[tuple[int, ...], float] = {}

    def __call__(self, width: float) -> float:
        key = tuple(units(n, width) for n in self.sizes)
        if key not in self._known:
            self._known[key] = flops_at(self.model, width, self.input_shape, self.classes)
        return self._known[key]


def sandwich_train(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    optimizer: str,
    generator: torch.Generator,
    p_min: float,
    cost: WidthCost,
) -> float:
    """Train in place by the sandwich rule: every step the full width plus one
    width ``p ~ U[p_min, 1]`` (drawn from ``generator``), their gradients
    summed. Returns the FLOPs of the random-width passes (the full-width ones
    are those of the dense model)."""
    import torch
    from torch import nn

    if len(x) == 0:
        return 0.0
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt: torch.optim.Optimizer = (
        torch.optim.Adam(model.parameters(), lr=lr)
        if optimizer == "adam"
        else torch.optim.SGD(model.parameters(), lr=lr)
    )
    model.train()
    extra = 0.0
    try:
        for _ in range(epochs):
            order = torch.randperm(len(xt), generator=generator)
            for start in range(0, len(xt), batch_size):
                batch = order[start : start + batch_size]
                p = p_min + (1 - p_min) * float(torch.rand(1, generator=generator))
                opt.zero_grad(set_to_none=True)
                for width in (1.0, p):
                    set_width(model, width)
                    nn.functional.cross_entropy(model(xt[batch]), yt[batch]).backward()
                opt.step()
                extra += len(batch) * cost(p)
    finally:
        set_width(model, 1.0)
    return extra
