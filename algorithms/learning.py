"""Local training and evaluation of a torch model on a device's own data.

Each call starts a fresh optimizer (``sgd`` or ``adam``): the usual choice in
federated averaging, where a client's model is replaced every round.
Mini-batches are shuffled with the device's own torch generator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from algorithms import datasets, models
from netsim import rng as rngs

if TYPE_CHECKING:  # torch is imported where it is used: it takes seconds to load
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
    import torch
    from torch import nn

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
    import torch
    from torch import nn

    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x))
        loss = float(nn.functional.cross_entropy(logits, torch.from_numpy(y)))
        accuracy = float((logits.argmax(dim=1) == torch.from_numpy(y)).float().mean())
    return accuracy, loss


class Learner:
    """What a host holds for learning: the data split (built from the seed),
    each of its client devices' shard and torch generator, and one scratch
    model that every training call loads, trains and reads back."""

    def __init__(
        self,
        seed: int,
        devices: np.ndarray,
        clients: np.ndarray,
        data: datasets.DataSpec,
        model: str,
        hidden: int,
    ) -> None:
        import torch

        self.split = datasets.split(data, len(clients), seed)
        shard_of = {int(c): k for k, c in enumerate(clients)}  # clients in id order
        self.shards = {
            int(d): self.split.clients[shard_of[int(d)]] for d in devices if int(d) in shard_of
        }
        self.model = models.build(
            model,
            self.split.input_shape,
            self.split.classes,
            rngs.int_seed(seed, "model-init"),
            hidden,
        )
        self.generators = {
            int(d): torch.Generator().manual_seed(rngs.int_seed(seed, "minibatch", int(d)))
            for d in devices
        }

    def samples(self, device: int) -> int:
        return len(self.shards.get(device, ()))

    def train(
        self,
        device: int,
        vector: np.ndarray,
        *,
        epochs: int,
        batch_size: int,
        lr: float,
        optimizer: str,
    ) -> np.ndarray:
        """``vector`` trained on ``device``'s shard; the trained parameters."""
        models.set_vector(self.model, vector)
        idx = self.shards.get(device, np.empty(0, dtype=np.int64))
        local_train(
            self.model,
            self.split.x_train[idx],
            self.split.y_train[idx],
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            generator=self.generators[device],
        )
        return models.get_vector(self.model)

    def evaluate(self, vector: np.ndarray) -> tuple[float, float]:
        """Accuracy and loss of ``vector`` on the held-out test split."""
        models.set_vector(self.model, vector)
        return evaluate(self.model, self.split.x_test, self.split.y_test)
