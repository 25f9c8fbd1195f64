"""Offline data for federated and decentralized learning, and how it is split
among clients.

Nothing is downloaded. Data sets:

- ``digits``: scikit-learn's handwritten digits (1,797 8x8 images, 10 classes,
  shipped inside scikit-learn), scaled to [0, 1];
- ``synthetic``: the FedProx Synthetic(alpha, beta) benchmark (Li et al., "Federated
  optimization in heterogeneous networks", MLSys 2020): 60 features, 10 classes,
  device ``k`` with its own model ``W_k, b_k ~ N(u_k, 1)``, ``u_k ~ N(0, alpha)``,
  and its own inputs ``x ~ N(v_k, diag(j^-1.2))``, ``v_k ~ N(B_k, 1)``,
  ``B_k ~ N(0, beta)``; labels ``argmax(W_k x + b_k)``;
- your own: any function ``(seed) -> (x, y)`` of numpy arrays, or a torch
  ``Dataset`` of ``(x, y)`` pairs, passed as ``DataSpec(source=...)``.

A held-out test split (stratified, ``test_fraction``) is taken first; the rest
is partitioned among the clients:

- ``iid``: a random permutation in equal parts;
- ``dirichlet``: for every class, proportions over clients ``~ Dir(alpha)``
  (label skew; small ``alpha`` = few classes per client);
- ``quantity``: client sizes ``~ Dir(alpha)`` (quantity skew), labels mixed.

Everything is a function of the seed, so every host builds the same data and
the same partition and takes its own clients' shards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from netsim import checks
from netsim import rng as rngs
from netsim.errors import InputError

DATASETS = ("digits", "synthetic")
PARTITIONS = ("iid", "dirichlet", "quantity")


@dataclass(frozen=True)
class DataSpec:
    """Which data, and how it is split. ``source``: a data set name, or a
    callable ``(seed) -> (x, y)`` / a torch ``Dataset`` for your own data."""

    source: Any = "digits"
    partition: str = "iid"
    alpha: float = 0.5
    test_fraction: float = 0.2
    synthetic_alpha: float = 1.0
    synthetic_beta: float = 1.0
    synthetic_devices: int = 30

    def __post_init__(self) -> None:
        if isinstance(self.source, str):
            checks.choice("dataset", self.source, DATASETS)
        elif not callable(self.source) and not hasattr(self.source, "__getitem__"):
            raise InputError(
                "dataset: expected a name, a function (seed) -> (x, y) or a torch Dataset"
            )
        checks.choice("partition", self.partition, PARTITIONS)
        checks.number("alpha", self.alpha, low=0, low_open=True)
        checks.number(
            "test_fraction", self.test_fraction, low=0, high=1, low_open=True, high_open=True
        )


@dataclass(frozen=True)
class Split:
    """Train and test arrays, and each client's training indices."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    clients: list[np.ndarray]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def classes(self) -> int:
        return int(max(self.y_train.max(initial=0), self.y_test.max(initial=0))) + 1


def load(spec: DataSpec, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """All examples ``(x, y)``: float32 inputs, int64 labels."""
    if spec.source == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x, y = d.images.astype(np.float32)[:, None] / 16.0, d.target.astype(np.int64)
    elif spec.source == "synthetic":
        x, y = synthetic(spec.synthetic_alpha, spec.synthetic_beta, spec.synthetic_devices, seed)
    elif callable(spec.source):
        x, y = spec.source(seed)
    else:  # a torch Dataset
        pairs = [spec.source[i] for i in range(len(spec.source))]
        x = np.stack([np.asarray(p[0]) for p in pairs])
        y = np.asarray([int(p[1]) for p in pairs])
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.int64)
    if len(x) != len(y) or len(x) == 0:
        raise InputError(
            f"dataset: expected as many labels as inputs (> 0), got {len(x)} and {len(y)}"
        )
    return x, y


def synthetic(
    alpha: float, beta: float, devices: int, seed: int, dim: int = 60, classes: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """FedProx Synthetic(alpha, beta), pooled over ``devices`` generating devices
    (each with a log-normal number of samples)."""
    g = rngs.generator(seed, "synthetic-data")
    cov = np.arange(1, dim + 1, dtype=float) ** -1.2
    xs, ys = [], []
    for _ in range(devices):
        u, b = g.normal(0, np.sqrt(alpha)), g.normal(0, np.sqrt(beta))
        w, bias = g.normal(u, 1, (classes, dim)), g.normal(u, 1, classes)
        v = g.normal(b, 1, dim)
        n = int(min(400, 20 + g.lognormal(4, 1)))
        x = g.normal(v, np.sqrt(cov), (n, dim))
        xs.append(x)
        ys.append(np.argmax(x @ w.T + bias, axis=1))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int64)


def split(spec: DataSpec, clients: int, seed: int) -> Split:
    """Test split, then the clients' partition of the rest."""
    checks.positive_int("clients", clients)
    x, y = load(spec, seed)
    g = rngs.generator(seed, "data-split")
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):  # stratified
        idx = np.flatnonzero(y == c)
        test[g.choice(idx, round(spec.test_fraction * len(idx)), replace=False)] = True
    train = np.flatnonzero(~test)
    x_train, y_train = x[train], y[train]
    parts = partition(
        y_train, clients, spec.partition, spec.alpha, rngs.generator(seed, "partition")
    )
    return Split(x_train, y_train, x[test], y[test], parts)


def partition(
    labels: np.ndarray, clients: int, scheme: str, alpha: float, g: np.random.Generator
) -> list[np.ndarray]:
    """Indices of each client's examples (every example to exactly one client)."""
    n = len(labels)
    if scheme == "iid":
        return [np.sort(p) for p in np.array_split(g.permutation(n), clients)]
    if scheme == "quantity":
        sizes = np.floor(g.dirichlet(np.full(clients, alpha)) * n).astype(int)
        sizes[np.argmax(sizes)] += n - sizes.sum()
        cuts = np.cumsum(sizes)[:-1]
        return [np.sort(p) for p in np.split(g.permutation(n), cuts)]
    owners: list[list[int]] = [[] for _ in range(clients)]
    for c in np.unique(labels):
        idx = g.permutation(np.flatnonzero(labels == c))
        shares = g.dirichlet(np.full(clients, alpha))
        cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(int)
        for k, piece in enumerate(np.split(idx, cuts)):
            owners[k].extend(piece.tolist())
    return [np.sort(np.asarray(o, dtype=np.int64)) for o in owners]


UserData = Callable[[int], tuple[np.ndarray, np.ndarray]]
