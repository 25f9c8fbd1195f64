"""Small torch models, their exact training cost, and their parameters as
messages.

- ``logreg``: a linear layer; ``mlp``: one hidden layer (``hidden`` units, ReLU);
- ``cnn``: for image inputs ``(channels, height, width)``, two 3x3
  convolutions (8 and 16 channels, ReLU, 2x2 max-pooling) and a linear layer;
  for signals ``(channels, length)`` (MNIST-1D), three 1-D convolutions of
  ``hidden`` channels (kernel 5, stride 2, ReLU) and a linear layer.

Models are built from a seed (a forked torch RNG: the global one is not
touched). The FLOPs of a training step are counted by torch's own FLOP counter
on the actual model (forward and backward of one batch), per sample; for
models of linear layers the same numbers are computed directly
(:func:`linear_flops`), as the counter is slow to load. A model
travels as its parameters flattened to float32: ``4 * parameters`` bytes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from netsim.errors import InputError

if TYPE_CHECKING:  # torch is imported where it is used: it takes seconds to load
    from torch import nn

MODELS = ("logreg", "mlp", "cnn")


def build(
    name: str, input_shape: tuple[int, ...], classes: int, seed: int, hidden: int = 32
) -> nn.Module:
    """The model ``name`` for inputs of ``input_shape``, initialised from ``seed``."""
    import torch
    from torch import nn

    features = int(np.prod(input_shape))
    if name == "cnn":
        if len(input_shape) == 2 and input_shape[1] >= 8:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return _cnn1d(input_shape, classes, hidden)
        if len(input_shape) != 3 or min(input_shape[1:]) < 4:
            raise InputError(
                "model cnn expects image inputs (channels, height, width) of at least 4x4 or "
                f"signals (channels, length) of at least 8, the data has shape {tuple(input_shape)}"
            )
        c, h, w = input_shape
    elif name not in ("logreg", "mlp"):
        raise InputError(f"model: expected one of {', '.join(MODELS)}, got {name!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if name == "logreg":
            return nn.Sequential(nn.Flatten(), nn.Linear(features, classes))
        if name == "mlp":
            return nn.Sequential(
                nn.Flatten(), nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, classes)
            )
        return nn.Sequential(
            nn.Conv2d(c, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * (h // 4) * (w // 4), classes),
        )


def _cnn1d(input_shape: tuple[int, ...], classes: int, channels: int) -> nn.Module:
    from torch import nn

    c, length = input_shape
    layers: list[nn.Module] = []
    for i in range(3):
        layers += [
            nn.Conv1d(c if i == 0 else channels, channels, 5, stride=2, padding=2),
            nn.ReLU(),
        ]
        length = (length + 4 - 5) // 2 + 1
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * length, classes))


def linear_flops(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[float, float] | None:
    """FLOPs per example of a forward pass and of forward + backward, for a
    ``Sequential`` of ``Flatten``, ``Linear`` and ``ReLU`` layers (``logreg``,
    ``mlp``); ``None`` for any other model. The same numbers as torch's FLOP
    counter (which tests check), without its cost: its first use imports
    ``torch._dynamo``, about 1.5 s. The counter counts matrix products only:
    ``2 * in * out`` per linear layer forward, the same for the weight's
    gradient, and again for the input's gradient except at the first layer,
    whose input needs none."""
    from torch import nn

    if type(model) is not nn.Sequential or not all(p.requires_grad for p in model.parameters()):
        return None
    widths = [int(np.prod(input_shape))]
    for layer in model:
        if type(layer) is nn.Linear:
            if layer.in_features != widths[-1]:
                return None
            widths.append(layer.out_features)
        elif type(layer) not in (nn.Flatten, nn.ReLU) or (
            type(layer) is nn.Flatten and (layer.start_dim, layer.end_dim) != (1, -1)
        ):
            return None
    return dense_flops(widths)


def dense_flops(widths: Sequence[int]) -> tuple[float, float]:
    """:func:`linear_flops` of a stack of linear layers from ``widths[0]``
    inputs through ``widths[1:]`` units each, without torch (the numpy
    engine's models, :mod:`algorithms.numpy_models`, count the same)."""
    forward = backward = 0.0
    for i, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
        mm = 2.0 * n_in * n_out
        forward += mm
        backward += mm if i == 0 else 2 * mm
    return forward, forward + backward


def forward_flops_per_sample(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """FLOPs of a forward pass per example (inference: logits), counted on ``model``."""
    analytic = linear_flops(model, input_shape)
    if analytic is not None:
        return analytic[0]
    return counted_forward_flops(model, input_shape)


def counted_forward_flops(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """:func:`forward_flops_per_sample` by torch's FLOP counter."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    batch = 8
    probe = _copy(model)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        probe(torch.zeros((batch, *input_shape)))
    return counter.get_total_flops() / batch


def training_flops_per_sample(
    model: nn.Module, input_shape: tuple[int, ...], classes: int
) -> float:
    """FLOPs of forward + backward per example, counted on ``model`` itself."""
    analytic = linear_flops(model, input_shape)
    if analytic is not None:
        return analytic[1]
    return counted_training_flops(model, input_shape, classes)


def counted_training_flops(model: nn.Module, input_shape: tuple[int, ...], classes: int) -> float:
    """:func:`training_flops_per_sample` by torch's FLOP counter."""
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    batch = 8
    x = torch.zeros((batch, *input_shape))
    y = torch.zeros(batch, dtype=torch.long)
    probe = _copy(model)
    with FlopCounterMode(display=False) as counter:
        nn.functional.cross_entropy(probe(x), y).backward()
    return counter.get_total_flops() / batch


def _copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model)


def get_vector(model: nn.Module) -> np.ndarray:
    """All parameters, flattened, float32."""
    import torch
    from torch import nn

    with torch.no_grad():
        return (
            nn.utils.parameters_to_vector(model.parameters()).numpy().astype(np.float32, copy=True)
        )


def set_vector(model: nn.Module, vector: np.ndarray) -> None:
    """Copy ``vector`` into the model's parameters. A copy, not a view: training
    must never write into the caller's array (e.g. the driver's global model)."""
    import torch

    flat = torch.tensor(np.asarray(vector, dtype=np.float32))  # torch.tensor copies
    offset = 0
    with torch.no_grad():
        for p in model.parameters():
            n = p.numel()
            p.copy_(flat[offset : offset + n].view_as(p))
            offset += n
    if offset != len(flat):
        raise ValueError(f"vector of {len(flat)} values for a model of {offset} parameters")


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch with ``n`` threads (results must not depend on the host's core
    count: reductions split over threads round differently)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
