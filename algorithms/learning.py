"""What a device learns, and how: model specs by device prototype, the
learning config, and local training and evaluation on a device's own data
(a host's clients learn through :class:`algorithms.learner.Learner`).

A device's *prototype* is its node attribute ``prototype`` (a name, e.g.
``small`` or ``large``); :class:`LearningConfig` maps prototypes to
:class:`ModelSpec` (devices without the attribute, or with a prototype the
config does not name, are refused before the run). Training time, message
sizes and energy follow from the model each device actually trains.

Each training call starts a fresh optimizer (``sgd`` or ``adam``): the usual
choice in federated averaging, where a client's model is replaced every
round. Plain SGD is stepped directly (:func:`sgd_step`, the same update as
``torch.optim.SGD``), which keeps torch's optimizer machinery out of runs
that do not need it. Mini-batches are shuffled with the device's own torch generator.

Two training engines, chosen explicitly by ``LearningConfig.engine``:
``torch`` (the default: every model and optimizer) and ``numpy``
(:mod:`algorithms.numpy_models`: ``logreg`` and ``mlp`` with plain SGD, the
same parameter layout, message sizes and FLOPs, without importing torch,
which takes about 2 s; its runs differ from torch's in the initial model's
draw, the mini-batch order (the device's numpy generator) and float32
rounding, not in distribution). Anything else with engine ``numpy`` is
refused when the config is made.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from algorithms import datasets, models, numpy_models, participants, slimmable
from algorithms.base import Final, network_rows
from algorithms.participants import Participant
from netsim import checks
from netsim import rng as rngs
from netsim.errors import InputError

if TYPE_CHECKING:  # torch is imported where it is used: it takes seconds to load
    import torch
    from torch import nn

OPTIMIZERS = ("sgd", "adam")
ENGINES = ("torch", "numpy")
DEFAULT_PROTOTYPE = "default"
PROTOTYPE_ATTRIBUTE = "prototype"


@dataclass(frozen=True)
class ModelSpec:
    """A model architecture: ``name`` in :data:`algorithms.models.MODELS`,
    ``hidden`` units (MLP) or channels (1-D CNN); ``slimmable``: the same
    architecture runnable at any width (:mod:`algorithms.slimmable`)."""

    name: str = "mlp"
    hidden: int = 32
    slimmable: bool = False

    def __post_init__(self) -> None:
        checks.choice("model", self.name, models.MODELS)
        checks.positive_int("hidden", self.hidden)
        if self.slimmable:
            checks.choice("model (slimmable)", self.name, slimmable.SLIMMABLE)

    def build_numpy(
        self, input_shape: tuple[int, ...], classes: int, seed: int
    ) -> numpy_models.DenseNet:
        """The model for the numpy engine (``logreg`` or ``mlp``), initialised from ``seed``."""
        return numpy_models.build(self.name, input_shape, classes, seed, self.hidden)

    def build(self, input_shape: tuple[int, ...], classes: int, seed: int) -> nn.Module:
        """The torch model, initialised from ``seed``."""
        if self.slimmable:
            return slimmable.build(self.name, input_shape, classes, seed, self.hidden)
        return models.build(self.name, input_shape, classes, seed, self.hidden)


@dataclass(frozen=True)
class LearningConfig:
    """What devices train, and how (shared by the federated family and D-PSGD).

    ``model``/``hidden`` give the model of every device; ``prototypes`` maps
    prototype names (node attribute ``prototype``) to their own models
    instead, for device-heterogeneous learning. ``engine``: ``torch``, or
    ``numpy`` for ``logreg``/``mlp`` models trained by ``sgd`` without
    torch (:mod:`algorithms.numpy_models`)."""

    data: datasets.DataSpec = field(default_factory=datasets.DataSpec)
    model: str = "mlp"
    hidden: int = 32
    slimmable: bool = False
    prototypes: Mapping[str, ModelSpec] = field(default_factory=dict)
    local_epochs: int = 1
    batch_size: int = 16
    lr: float = 0.1
    optimizer: Literal["sgd", "adam"] = "sgd"
    torch_threads: int = 1
    engine: Literal["torch", "numpy"] = "torch"

    def __post_init__(self) -> None:
        ModelSpec(self.model, self.hidden, self.slimmable)  # checks the fields
        for name, spec in self.prototypes.items():
            if not isinstance(name, str) or not isinstance(spec, ModelSpec):
                raise InputError(
                    f"prototypes: expected names mapped to ModelSpec, got {name!r}: {spec!r}"
                )
        checks.positive_int("local_epochs", self.local_epochs)
        checks.positive_int("batch_size", self.batch_size)
        checks.number("lr", self.lr, low=0, low_open=True)
        checks.choice("optimizer", self.optimizer, OPTIMIZERS)
        checks.positive_int("torch_threads", self.torch_threads)
        checks.choice("engine", self.engine, ENGINES)
        if self.engine == "numpy":
            self._check_numpy_engine()

    def _check_numpy_engine(self) -> None:
        supports = (
            f"engine numpy: supports models {' and '.join(numpy_models.MODELS)} "
            "with optimizer sgd, got"
        )
        for spec in self.specs.values():
            if spec.slimmable:
                raise InputError(f"{supports} a slimmable {spec.name}")
            if spec.name not in numpy_models.MODELS:
                raise InputError(f"{supports} {spec.name}")
        if self.optimizer != "sgd":
            raise InputError(f"{supports} optimizer {self.optimizer}")

    @property
    def specs(self) -> dict[str, ModelSpec]:
        """Every prototype's model."""
        return dict(self.prototypes) or {
            DEFAULT_PROTOTYPE: ModelSpec(self.model, self.hidden, self.slimmable)
        }

    def prototype_of(
        self, nodes: Mapping[str, np.ndarray], trainers: list[int] | np.ndarray
    ) -> dict[int, str]:
        """The prototype of each node that trains, from the node attribute
        ``prototype`` (InputError naming the first that has none, or one the
        config does not name)."""
        trainers = [int(k) for k in trainers]
        if not self.prototypes:
            return dict.fromkeys(trainers, DEFAULT_PROTOTYPE)
        names = nodes.get(PROTOTYPE_ATTRIBUTE)
        known = ", ".join(sorted(self.prototypes))
        out = {}
        for k in trainers:
            name = None if names is None else names[k]
            if name is None:
                raise InputError(
                    f"topology node {k}: attribute {PROTOTYPE_ATTRIBUTE!r} missing "
                    f"(the learning config names prototypes {known})"
                )
            if name not in self.prototypes:
                raise InputError(f"topology node {k}: prototype {name!r} is not one of {known}")
            out[k] = str(name)
        return out

    def model_seed(self, seed: int, prototype: str) -> int:
        """Seed of a prototype's initial model (the same on every host)."""
        if prototype == DEFAULT_PROTOTYPE:
            return rngs.int_seed(seed, "model-init")
        return rngs.int_seed(seed, "model-init", zlib.crc32(prototype.encode()))

    def check_fit(self, split: datasets.Split, seed: int) -> dict[str, Any]:
        """Every prototype's initial model for this data (InputError when its
        shape does not fit; dense models flatten any input)."""
        if self.engine == "numpy":
            return {
                name: spec.build_numpy(
                    split.input_shape, split.classes, self.model_seed(seed, name)
                )
                for name, spec in self.specs.items()
            }
        import torch

        built = {}
        for name, spec in self.specs.items():
            model = spec.build(split.input_shape, split.classes, self.model_seed(seed, name))
            try:
                with models.torch_threads(1), torch.no_grad():
                    model(torch.from_numpy(split.x_test[:2]))
            except RuntimeError as e:
                raise InputError(
                    f"model {spec.name} does not fit the data (inputs of shape "
                    f"{split.input_shape}): {str(e).splitlines()[0]}"
                ) from None
            built[name] = model
        return built


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
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=lr) if optimizer == "adam" else None
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=generator)
        for start in range(0, len(xt), batch_size):
            batch = order[start : start + batch_size]
            for p in params:
                p.grad = None
            nn.functional.cross_entropy(model(xt[batch]), yt[batch]).backward()
            if opt is not None:
                opt.step()
            else:
                sgd_step(params, lr)
    return epochs * len(xt)


def sgd_step(params: Sequence[torch.Tensor], lr: float) -> None:
    """One step of plain SGD, ``p -= lr * p.grad``: the update
    ``torch.optim.SGD`` makes without momentum or weight decay, to the bit,
    without its cost: the first optimizer torch builds imports
    ``torch._dynamo`` (about 1.5 s, more than a small federated run trains)."""
    import torch

    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p.add_(p.grad, alpha=-lr)


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


def client_split(
    cfg: LearningConfig,
    clients: np.ndarray | list[int],
    prototype: Mapping[int, str],
    seed: int,
    people: Mapping[int, Participant] | None = None,
) -> datasets.Split:
    """The data split, with each client's share by prototype when the data
    spec gives ``shares``, or by its ``data_weight`` (:mod:`algorithms.participants`)."""
    groups = [prototype[int(c)] for c in clients] if cfg.data.shares else None
    weights = participants.data_weights(people, [int(c) for c in clients]) if people else None
    return datasets.split(cfg.data, len(clients), seed, groups, weights)


@dataclass(frozen=True)
class ModelCost:
    """A prototype's model: parameters, and FLOPs per example of a training
    step (forward and backward) and of inference, counted on the model."""

    parameters: int
    train_flops: float
    forward_flops: float


def cost_table(cfg: LearningConfig, split: datasets.Split, seed: int) -> dict[str, ModelCost]:
    """Every prototype's :class:`ModelCost`."""
    out = {}
    for name, model in cfg.check_fit(split, seed).items():
        if isinstance(model, numpy_models.DenseNet):
            forward, train = model.flops()
            out[name] = ModelCost(model.size, train, forward)
            continue
        out[name] = ModelCost(
            models.parameter_count(model),
            models.training_flops_per_sample(model, split.input_shape, split.classes),
            models.forward_flops_per_sample(model, split.input_shape),
        )
    return out


def accuracy_final(metrics: pd.DataFrame, target: float) -> Final:
    """Summary of a learning run: last and best test accuracy, and the
    simulated time at which it first reached ``target``."""
    rows = network_rows(metrics, "accuracy")
    reached = rows[rows["value"] >= target]
    time_to_target = float(reached["time"].iloc[0]) if len(reached) else math.nan
    return Final(
        {
            "accuracy": float(rows["value"].iloc[-1]),
            "best_accuracy": float(rows["value"].max()),
            "time_to_target_s": time_to_target,
        },
        {
            "accuracy": "test accuracy of the global model after the last round",
            "time_to_target_s": f"simulated time at which test accuracy first reached {target:g} "
            "(null: never)",
        },
    )
