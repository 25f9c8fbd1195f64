"""What a host holds for learning (:class:`Learner`): its clients' data,
labels and mini-batch generators, and one scratch model per prototype that
every training and evaluation call loads, runs and reads back, with the
training engine the learning config names (torch, or numpy for dense models
trained by plain SGD: :mod:`algorithms.numpy_models`; torch is not imported
then).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from algorithms import models, numpy_models, participants, slimmable
from algorithms.learning import LearningConfig, client_split, evaluate, local_train
from algorithms.participants import Participant
from netsim import rng as rngs


class Learner:
    """What a host holds for learning: the data split (built from the seed),
    each of its client devices' shard (and labels, noisy where the device's
    ``label_noise`` says), prototype and mini-batch generator (torch's, or
    numpy's for engine ``numpy``), and one scratch model per prototype that
    every training call loads, trains and reads back."""

    def __init__(
        self,
        cfg: LearningConfig,
        seed: int,
        devices: np.ndarray,
        clients: np.ndarray,
        prototype: Mapping[int, str],
        people: Mapping[int, Participant] | None = None,
    ) -> None:
        self.cfg = cfg
        self.numpy = cfg.engine == "numpy"
        self.split = client_split(cfg, clients, prototype, seed, people)
        shard_of = {int(c): k for k, c in enumerate(clients)}  # clients in id order
        self.shards = {
            int(d): self.split.clients[shard_of[int(d)]] for d in devices if int(d) in shard_of
        }
        self.labels = {
            d: participants.noisy_labels(
                self.split.y_train[idx],
                people[d].label_noise if people else 0.0,
                self.split.classes,
                rngs.generator(seed, "label-noise", d),
            )
            for d, idx in self.shards.items()
        }
        self.people = {d: people[d] for d in self.shards} if people else {}
        self.prototype = {int(d): prototype[int(d)] for d in devices if int(d) in prototype}
        shape, classes = self.split.input_shape, self.split.classes
        self.models: dict[str, Any] = {
            name: (spec.build_numpy if self.numpy else spec.build)(
                shape, classes, cfg.model_seed(seed, name)
            )
            for name, spec in cfg.specs.items()
        }
        # every prototype's initial parameters (the same on every host)
        self.initial = {name: self._get(m) for name, m in self.models.items()}
        self.generators: dict[int, Any]
        if self.numpy:
            self.generators = {
                int(d): np.random.default_rng(rngs.int_seed(seed, "minibatch", int(d)))
                for d in devices
            }
        else:
            import torch

            self.generators = {
                int(d): torch.Generator().manual_seed(rngs.int_seed(seed, "minibatch", int(d)))
                for d in devices
            }
        self._width_cost: dict[str, slimmable.WidthCost] = {}

    def _get(self, model: Any) -> np.ndarray:
        return model.get_vector() if self.numpy else models.get_vector(model)

    def samples(self, device: int) -> int:
        return len(self.shards.get(device, ()))

    def _data(self, device: int) -> tuple[np.ndarray, np.ndarray]:
        idx = self.shards.get(device, np.empty(0, dtype=np.int64))
        return self.split.x_train[idx], self.labels.get(device, self.split.y_train[idx])

    def train(self, device: int, vector: np.ndarray) -> np.ndarray:
        """``vector`` trained on ``device``'s shard; the trained parameters."""
        cfg = self.cfg
        model = self.models[self.prototype[device]]
        x, y = self._data(device)
        if self.numpy:
            model.set_vector(vector)
            numpy_models.local_train(model, x, y, **self._schedule(device))
            return model.get_vector()
        models.set_vector(model, vector)
        with models.torch_threads(cfg.torch_threads):
            local_train(model, x, y, optimizer=cfg.optimizer, **self._schedule(device))
        return models.get_vector(model)

    def _schedule(self, device: int) -> dict[str, Any]:
        """How ``device`` trains, whatever the engine: epochs, batches, step
        size, and its mini-batch generator."""
        cfg = self.cfg
        return {
            "epochs": cfg.local_epochs,
            "batch_size": cfg.batch_size,
            "lr": cfg.lr,
            "generator": self.generators[device],
        }

    def train_sandwich(
        self, device: int, vector: np.ndarray, p_min: float
    ) -> tuple[np.ndarray, float]:
        """``vector`` (a slimmable model) trained by the sandwich rule; the
        trained parameters and the FLOPs of its random-width passes."""
        cfg, p = self.cfg, self.prototype[device]
        model = self.models[p]
        models.set_vector(model, vector)
        if p not in self._width_cost:
            self._width_cost[p] = slimmable.WidthCost(
                model, self.split.input_shape, self.split.classes
            )
        x, y = self._data(device)
        with models.torch_threads(cfg.torch_threads):
            extra = slimmable.sandwich_train(
                model,
                x,
                y,
                optimizer=cfg.optimizer,
                p_min=p_min,
                cost=self._width_cost[p],
                **self._schedule(device),
            )
        return models.get_vector(model), extra

    def evaluate(
        self, prototype: str, vector: np.ndarray, width: float = 1.0, on: str = "test"
    ) -> tuple[float, float]:
        """Accuracy and loss of ``vector`` (a ``prototype`` model, run at
        ``width`` if slimmable) on the held-out ``test`` split or the server's
        ``validation`` split."""
        model = self.models[prototype]
        x, y = (
            (self.split.x_test, self.split.y_test)
            if on == "test"
            else (self.split.x_val, self.split.y_val)
        )
        if self.numpy:  # dense models only: not slimmable, always at width 1
            model.set_vector(vector)
            return numpy_models.evaluate(model, x, y)
        models.set_vector(model, vector)
        slimmable.set_width(model, width)
        try:
            with models.torch_threads(self.cfg.torch_threads):
                return evaluate(model, x, y)
        finally:
            slimmable.set_width(model, 1.0)
