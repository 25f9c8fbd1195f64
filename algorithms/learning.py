"""Local training and evaluation of a torch model on a device's own data.

Each call starts a fresh optimizer (``sgd`` or ``adam``): the usual choice in
federated averaging, where a client's model is replaced every round.
Mini-batches are shuffled with the device's own torch generator.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

OPTIMIZERS = ("sgd", "adam")


def local_train(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    optimizer: str,
    generator: torch.Generator,
) -> int:
    """Train in place for ``epochs`` passes; returns the examples processed."""
    if len(x) == 0:
        return 0
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt: torch.optim.Optimizer = (
        torch.optim.Adam(model.parameters(), lr=lr)
        if optimizer == "adam"
        else torch.optim.SGD(model.parameters(), lr=lr)
    )
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=generator)
        for start in range(0, len(xt), batch_size):
            batch = order[start : start + batch_size]
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(xt[batch]), yt[batch]).backward()
            opt.step()
    return epochs * len(xt)


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Accuracy and mean cross-entropy loss on ``(x, y)``."""
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x))
        loss = float(nn.functional.cross_entropy(logits, torch.from_numpy(y)))
        accuracy = float((logits.argmax(dim=1) == torch.from_numpy(y)).float().mean())
    return accuracy, loss
