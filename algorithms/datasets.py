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
- ``mnist1d``: MNIST-1D (Greydanus 2020): 10 classes of 1-D signals, 40 samples
  long, shaped ``(1, 40)``; ``samples`` of them generated offline by the
  ``mnist1d`` package's ``make_dataset`` (its own generation seed, 42, so that
  every run sees the same data, as with digits). Where capacity matters:
  logistic regression reaches about 32%, an MLP about 68%, a CNN about 94%
  (its paper);
- your own: any function ``(seed) -> (x, y)`` of numpy arrays, or a torch
  ``Dataset`` of ``(x, y)`` pairs, passed as ``DataSpec(source=...)``.

A held-out test split (stratified, ``test_fraction``) is taken first; then,
for methods that need them at the server, an unlabeled *public* split
(``public_fraction`` of all examples, for distillation) and a small labelled
*validation* split (``validation_fraction``, stratified). The rest is
partitioned among the clients. With ``shares`` (a share of that pool per
group of clients, e.g. per device prototype: ``{"small": 0.1, "large": 0.9}``)
each group gets its share and partitions it among its own clients; otherwise
all clients share one pool:

- ``iid``: a random permutation in equal parts;
- ``dirichlet``: for every class, proportions over clients ``~ Dir(alpha)``
  (label skew; small ``alpha`` = few classes per client);
- ``quantity``: client sizes ``~ Dir(alpha)`` (quantity skew), labels mixed.

Everything is a function of the seed, so every host builds the same data and
the same partition and takes its own clients' shards.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from netsim import checks
from netsim import rng as rngs
from netsim.errors import InputError

DATASETS = ("digits", "synthetic", "mnist1d")
PARTITIONS = ("iid", "dirichlet", "quantity")


@dataclass(frozen=True)
class DataSpec:
    """Which data, and how it is split. ``source``: a data set name, or a
    callable ``(seed) -> (x, y)`` / a torch ``Dataset`` for your own data."""

    source: Any = "digits"
    partition: str = "iid"
    alpha: float = 0.5
    test_fraction: float = 0.2
    public_fraction: float = 0.0
    validation_fraction: float = 0.0
    shares: Mapping[str, float] = field(default_factory=dict)
    samples: int = 10_000  # MNIST-1D examples generated
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
        checks.number("public_fraction", self.public_fraction, low=0, high=1, high_open=True)
        checks.number(
            "validation_fraction", self.validation_fraction, low=0, high=1, high_open=True
        )
        if self.test_fraction + self.public_fraction + self.validation_fraction >= 1:
            raise InputError(
                "test_fraction + public_fraction + validation_fraction: expected < 1 "
                "(the clients need data too)"
            )
        for name, share in self.shares.items():
            checks.number(f"shares[{name!r}]", share, low=0, low_open=True)
        checks.positive_int("samples", self.samples, minimum=10)


@dataclass(frozen=True)
class Split:
    """Train and test arrays, each client's training indices, and the
    server's public (unlabeled) and validation splits (empty unless asked for)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    clients: list[np.ndarray]
    x_public: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    x_val: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    y_val: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def classes(self) -> int:
        return int(max(self.y_train.max(initial=0), self.y_test.max(initial=0))) + 1


def load(spec: DataSpec, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """All examples ``(x, y)``: float32 inputs, int64 labels."""
    if spec.source == "digits":
        x, y = digits()
    elif spec.source == "synthetic":
        x, y = synthetic(spec.synthetic_alpha, spec.synthetic_beta, spec.synthetic_devices, seed)
    elif spec.source == "mnist1d":
        x, y = mnist1d(spec.samples)
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


@functools.cache
def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits, inputs shaped ``(1, 8, 8)`` in [0, 1]. Read once
    per process from the CSV that scikit-learn ships, without importing
    scikit-learn (about a second: it imports SciPy's statistics); the same
    arrays as ``sklearn.datasets.load_digits``, which is the fallback when the
    file is not where scikit-learn 1.x keeps it."""
    import gzip
    from importlib.util import find_spec

    spec = find_spec("sklearn")  # locates the package without running it
    roots = (spec.submodule_search_locations or []) if spec else []
    files = [Path(r) / "datasets" / "data" / "digits.csv.gz" for r in roots]
    found = [f for f in files if f.is_file()]
    if found:
        with gzip.open(found[0], mode="rt", encoding="utf-8") as text:
            data = np.loadtxt(text, delimiter=",")
        images, target = data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)
    else:
        from sklearn.datasets import load_digits

        d = load_digits()
        images, target = d.images, d.target
    x, y = images.astype(np.float32)[:, None] / 16.0, target.astype(np.int64)
    x.flags.writeable = y.flags.writeable = False  # shared by every caller
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


@functools.cache
def mnist1d(samples: int) -> tuple[np.ndarray, np.ndarray]:
    """``samples`` MNIST-1D examples, inputs shaped ``(1, 40)``. Generated once
    per process (it takes about a millisecond per example); the package seeds
    Python's and numpy's global generators, which are restored afterwards."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = samples
    args.train_split = 1.0
    state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    try:
        data = make_dataset(args)
    finally:
        random.setstate(state)
        np.random.set_state(np_state)  # noqa: NPY002
    x = np.asarray(data["x"], dtype=np.float32)[:, None, :]
    y = np.asarray(data["y"], dtype=np.int64)
    x.flags.writeable = y.flags.writeable = False  # shared by every caller
    return x, y


def _stratified(y: np.ndarray, fraction: float, g: np.random.Generator) -> np.ndarray:
    """A mask taking ``fraction`` of each class."""
    mask = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        mask[g.choice(idx, round(fraction * len(idx)), replace=False)] = True
    return mask


def split(
    spec: DataSpec,
    clients: int,
    seed: int,
    groups: Sequence[str] | None = None,
    weights: np.ndarray | None = None,
) -> Split:
    """Test split, the server's public and validation splits, then the
    clients' partition of the rest (``groups[k]``: client ``k``'s group, for
    ``spec.shares``; ``weights[k]``: client ``k``'s relative share of an
    ``iid`` pool)."""
    checks.positive_int("clients", clients)
    x, y = load(spec, seed)
    test = _stratified(y, spec.test_fraction, rngs.generator(seed, "data-split"))
    rest = np.flatnonzero(~test)
    public = val = np.zeros(0, dtype=np.int64)
    if spec.public_fraction > 0 or spec.validation_fraction > 0:
        g = rngs.generator(seed, "server-split")
        rest = g.permutation(rest)
        k = round(spec.public_fraction * len(y))
        public, rest = np.sort(rest[:k]), rest[k:]
        held = _stratified(y[rest], spec.validation_fraction * len(y) / max(len(rest), 1), g)
        val, rest = np.sort(rest[held]), np.sort(rest[~held])
    x_train, y_train = x[rest], y[rest]
    if weights is not None:
        parts = _weighted(spec, len(y_train), clients, weights, seed)
    elif spec.shares:
        parts = _grouped(spec, y_train, clients, groups, seed)
    else:
        g = rngs.generator(seed, "partition")
        parts = partition(y_train, clients, spec.partition, spec.alpha, g)
    return Split(x_train, y_train, x[test], y[test], parts, x[public], x[val], y[val])


def _weighted(
    spec: DataSpec, n: int, clients: int, weights: np.ndarray, seed: int
) -> list[np.ndarray]:
    """A random permutation cut in proportion to ``weights``."""
    if spec.partition != "iid" or spec.shares:
        raise InputError(
            "data_weight node attributes set each client's share: they need the data spec's "
            f"partition 'iid' and no shares (it has partition {spec.partition!r})"
        )
    if len(weights) != clients:
        raise InputError(f"data weights: expected one per client ({clients}), got {len(weights)}")
    cuts = (np.cumsum(weights / weights.sum())[:-1] * n).astype(int)
    order = rngs.generator(seed, "partition").permutation(n)
    return [np.sort(p) for p in np.split(order, cuts)]


def _grouped(
    spec: DataSpec, labels: np.ndarray, clients: int, groups: Sequence[str] | None, seed: int
) -> list[np.ndarray]:
    """Each group's share of the pool, partitioned among its own clients."""
    if groups is None or len(groups) != clients:
        raise InputError("dataset shares: every client needs a group (its prototype)")
    names = sorted(set(groups))
    missing = [n for n in names if n not in spec.shares]
    if missing:
        raise InputError(
            f"dataset shares: no share for {missing[0]!r} (shares given for "
            f"{', '.join(sorted(spec.shares))})"
        )
    weights = np.array([spec.shares[n] for n in names], dtype=float)
    order = rngs.generator(seed, "group-split").permutation(len(labels))
    cuts = (np.cumsum(weights / weights.sum())[:-1] * len(labels)).astype(int)
    parts: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * clients
    for gi, (name, pool) in enumerate(zip(names, np.split(order, cuts), strict=True)):
        members = [k for k in range(clients) if groups[k] == name]
        g = rngs.generator(seed, "partition", gi)
        pieces = partition(labels[pool], len(members), spec.partition, spec.alpha, g)
        for k, piece in zip(members, pieces, strict=True):
            parts[k] = np.sort(pool[piece])
    return parts


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
