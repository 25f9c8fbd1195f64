"""Training the networks of multi-task split computing, once, deterministically,
and cached on disk (Matsubara, Mendula & Levorato, "Ladon", WACV 2025;
``papers.md`` section 6).

Order: the :class:`~algorithms.split.models.Teacher` on the task losses
(cross-entropy; L1 on boxes; BCE + dice on masks); the three on-device
models on their task's loss; then, for every ``beta``, the shared
:class:`~algorithms.split.models.SplitModel` (and, for ``per_task_betas``,
one per task) in two stages: (1) encoder, bottleneck and decoder distil the
frozen teacher's stem features (MSE, relative to their mean square) under
the rate ``beta * bits / S**2`` (bits per pixel); (2) everything, trunk and
heads started from the teacher's, at ``split_lr``, on task losses +
``distill`` x the distillation loss + the rate. The bottleneck's density
always fits its latent (its own maximum-likelihood term, even at ``beta =
0``), and is refit at the end to the rounded latents of the training set:
the coder's model, so the model's bits are the code's (Ballé et al. 2017).

Determinism: every model is trained with one torch thread in a forked torch
RNG seeded from ``(seed, purpose)``; the global RNG is not touched. The same
config gives bit-identical weights run after run on one machine (and torch
build: the cache key includes torch's version); CPUs with other vector units
may round differently.

Cache: ``$NETSIM_CACHE`` (default ``~/.cache/netsim``) / ``split-<hash>.pkl``,
keyed by the config, torch's version and :data:`CODE_VERSION`, written
atomically; a second call in one process returns the object in memory.
Inference: :class:`Pipelines`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from algorithms.split import entropy, shapes
from algorithms.split.task_metrics import Predictions
from netsim import checks
from netsim import rng as rngs
from netsim.errors import InputError
from netsim.outputs import atomic_file

if TYPE_CHECKING:  # torch is imported where it is used: it takes seconds to load
    import torch
    from torch import nn

    from algorithms.split.models import SplitModel, Teacher, Tensors

TASKS = ("class", "box", "mask")  # as algorithms.split.models.TASKS (which imports torch)
DENSITY_LR = 0.03  # the bottleneck's density: a handful of parameters, fit fast
CODE_VERSION = 2  # bump when training or the networks change: old cache files are ignored


@dataclass(frozen=True)
class SplitTraining:
    """How the networks are trained. Data: ``train``, ``validation`` and
    ``test`` images of ``image_size`` pixels, each set from its own stream of
    ``seed``. Epochs: teacher, each on-device model, the split models' two
    stages. ``betas``: the rate weights of the shared split model (bits per
    pixel); ``per_task_betas``: those with one split model per task too."""

    image_size: int = 32
    train: int = 3000
    validation: int = 500
    test: int = 1000
    teacher_epochs: int = 8
    device_epochs: int = 8
    distil_epochs: int = 2
    split_epochs: int = 3
    batch: int = 64
    lr: float = 3e-3
    split_lr: float = 6e-3
    betas: tuple[float, ...] = (0.0, 0.1, 0.3, 1.0, 3.0)
    per_task_betas: tuple[float, ...] = (0.1,)
    distill: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        checks.positive_int("image_size", self.image_size, minimum=8)
        if self.image_size % 8:
            raise InputError(f"image_size: expected a multiple of 8, got {self.image_size}")
        for name in ("train", "validation", "test", "batch"):
            checks.positive_int(name, getattr(self, name))
        for name in ("teacher_epochs", "device_epochs", "distil_epochs", "split_epochs"):
            checks.positive_int(name, getattr(self, name), minimum=0)
        for beta in self.betas:
            checks.number("betas", beta, low=0)
        if not set(self.per_task_betas) <= set(self.betas):
            raise InputError(f"per_task_betas {self.per_task_betas}: not all in betas {self.betas}")
        checks.number("lr", self.lr, low=0, low_open=True)
        checks.number("split_lr", self.split_lr, low=0, low_open=True)
        checks.number("distill", self.distill, low=0)
        checks.positive_int("seed", self.seed, minimum=0)


DEFAULT = SplitTraining()
# For tests: every code path in seconds; the models learn little.
TINY = SplitTraining(
    image_size=16,
    train=512,
    validation=64,
    test=128,
    teacher_epochs=3,
    device_epochs=1,
    distil_epochs=2,
    split_epochs=2,
    betas=(0.0, 1.0),
    per_task_betas=(1.0,),
)


def dataset(config: SplitTraining, part: str) -> shapes.ShapeSet:
    """The ``train``, ``validation`` or ``test`` images of ``config``."""
    n = {"train": config.train, "validation": config.validation, "test": config.test}[part]
    seed = rngs.int_seed(config.seed, f"split-{part}")
    return shapes.make_shapes(n, size=config.image_size, seed=seed)


@dataclass(frozen=True, eq=False)
class TrainedModels:
    """The trained weights as numpy state dicts (picklable, torch-free):
    ``teacher``; ``on_device[task]``; ``split[(beta, task)]`` with ``task``
    ``None`` for the shared model. ``seconds``: wall time of each training."""

    config: SplitTraining
    teacher: dict[str, np.ndarray]
    on_device: dict[str, dict[str, np.ndarray]]
    split: dict[tuple[float, str | None], dict[str, np.ndarray]]
    seconds: dict[str, float] = field(default_factory=dict)


def trained(config: SplitTraining = DEFAULT) -> TrainedModels:
    """The models of ``config``: from memory, else from the disk cache, else
    trained (DEFAULT: about three minutes on one core) and cached."""
    return _trained(cache_path(config), config)


@functools.cache
def _trained(path: Path, config: SplitTraining) -> TrainedModels:
    models = load(path)
    if models is None:
        models = train(config)
        try:
            with atomic_file(path) as tmp, tmp.open("wb") as f:
                pickle.dump(models, f, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError as e:  # a cache that cannot be written costs time, not results
            warnings.warn(f"split models not cached at {path}: {e}", stacklevel=3)
    return models


def load(path: Path) -> TrainedModels | None:
    """The models cached at ``path``; ``None`` if there are none (or unreadable)."""
    try:
        with path.open("rb") as f:
            models = pickle.load(f)  # our own cache directory: trusted as the code is
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError):
        return None
    return models if isinstance(models, TrainedModels) else None


def cache_path(config: SplitTraining) -> Path:
    """Where the models of ``config`` are cached."""
    import torch

    root = Path(os.environ.get("NETSIM_CACHE") or Path.home() / ".cache" / "netsim")
    key = repr((config, torch.__version__, CODE_VERSION)).encode()
    return root / f"split-{hashlib.sha256(key).hexdigest()[:20]}.pkl"


# ---------------------------------------------------------------- training
def train(config: SplitTraining) -> TrainedModels:
    """Train every model of ``config`` (no cache), with one torch thread.
    Cost: DEFAULT about three minutes on one core, TINY a few seconds."""
    import torch
    from tqdm import tqdm

    from algorithms.models import torch_threads
    from algorithms.split import models as nets

    jobs: list[tuple[float, str | None]] = [(b, None) for b in config.betas]
    jobs += [(b, t) for b in config.per_task_betas for t in TASKS]
    # a bar on a terminal only (disable=None): the first run trains for minutes
    bar = tqdm(total=1 + len(TASKS) + len(jobs), desc="training split models", disable=None)
    data = nets.Tensors.of(dataset(config, "train"))
    n, size, batch, lr = len(data), config.image_size, config.batch, config.lr
    seconds: dict[str, float] = {}
    with torch_threads(1):
        start = time.perf_counter()
        with _seeded(config, "teacher"):
            teacher = nets.Teacher(size)
            loss = functools.partial(_task_loss, teacher, data)
            nets.fit(teacher, [(teacher.parameters(), lr)], n, batch, config.teacher_epochs, loss)
        seconds["teacher"] = time.perf_counter() - start
        bar.update()
        on_device: dict[str, dict[str, np.ndarray]] = {}
        for task in TASKS:
            start = time.perf_counter()
            with _seeded(config, f"device-{task}"):
                model = nets.OnDevice(task, size)
                loss = functools.partial(_task_loss, model, data)
                nets.fit(model, [(model.parameters(), lr)], n, batch, config.device_epochs, loss)
            on_device[task] = _numpy(model)
            seconds[f"device-{task}"] = time.perf_counter() - start
            bar.update()
        with torch.no_grad():
            stem = torch.cat([teacher.stem(data.x[i : i + 512]) for i in range(0, n, 512)])
        split: dict[tuple[float, str | None], dict[str, np.ndarray]] = {}
        for beta, which in jobs:
            start = time.perf_counter()
            with _seeded(config, f"split-{beta!r}-{which}"):
                split[(beta, which)] = _numpy(
                    _train_split(config, teacher, data, stem, beta, which)
                )
            seconds[f"split-{beta:g}-{which or 'shared'}"] = time.perf_counter() - start
            bar.update()
    bar.close()
    return TrainedModels(config, _numpy(teacher), on_device, split, seconds)


def _task_loss(model: nn.Module, data: Tensors, i: torch.Tensor) -> torch.Tensor:
    from algorithms.split.models import task_loss

    return task_loss(model(data.x[i]), data, i)


def _train_split(
    config: SplitTraining,
    teacher: Teacher,
    data: Tensors,
    stem: torch.Tensor,
    beta: float,
    task: str | None,
) -> SplitModel:
    """A split model for ``task`` (``None``: all tasks): distil, then fine-tune."""
    import torch

    from algorithms.split import models as nets

    size = config.image_size
    model = nets.SplitModel(TASKS if task is None else (task,), size).from_teacher(teacher)
    scale = float(stem.pow(2).mean())

    def distil(i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(decoded stem features, distillation + rate loss) of the examples ``i``."""
        hard, noisy = model.bottleneck.quantize(model.encoder(data.x[i]))
        features = model.decoder.distil(hard)
        kd = (features - stem[i]).pow(2).mean() / scale
        # beta trades the encoder's bits; the density fits its latent whatever beta is.
        own = model.bottleneck.bits(noisy.detach()).mean()
        rate = (beta * model.bottleneck.bits(noisy).mean() + own) / size**2
        return features, config.distill * kd + rate

    def full(i: torch.Tensor) -> torch.Tensor:
        features, loss = distil(i)
        return nets.task_loss(model.decoder.rest(features), data, i) + loss

    # The density's few parameters learn fast; the heads, started from the teacher's, slowly.
    n, batch, lr = len(data), config.batch, config.lr
    density = (model.bottleneck.parameters(), DENSITY_LR)
    front = [p for m in (model.encoder, model.decoder.distil) for p in m.parameters()]
    nets.fit(model, [(front, lr), density], n, batch, config.distil_epochs, lambda i: distil(i)[1])
    rest = [p for p in model.parameters() if all(p is not q for q in model.bottleneck.parameters())]
    nets.fit(model, [(rest, config.split_lr), density], n, batch, config.split_epochs, full)
    with torch.no_grad():
        chunks = [model.encoder(data.x[i : i + 512]) for i in range(0, n, 512)]
    model.bottleneck.fit_symbols(model.bottleneck.quantize(torch.cat(chunks))[0])
    return model


@contextmanager
def _seeded(config: SplitTraining, purpose: str) -> Iterator[None]:
    """A forked torch RNG seeded from ``(config.seed, purpose)``."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(rngs.int_seed(config.seed, f"split-{purpose}"))
        yield


def _numpy(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- inference
class Pipelines:
    """Inference with trained models, numpy in and out: uint8 images ``(B, S,
    S, 3)`` to :class:`~algorithms.split.task_metrics.Predictions`. One torch
    thread, batches of 256, no gradients: deterministic for given inputs.
    ``task`` ``None`` is the shared split model, a task name its own model."""

    def __init__(self, models: TrainedModels) -> None:
        import torch

        nets = _nets()
        self.config = models.config
        size = self.config.image_size
        with torch.random.fork_rng(devices=[]):  # initialising modules draws from torch's RNG
            self._teacher = nets.loaded(nets.Teacher(size), models.teacher)
            self._local = [nets.loaded(nets.OnDevice(t, size), models.on_device[t]) for t in TASKS]
            self._split = {
                (beta, task): nets.loaded(
                    nets.SplitModel(TASKS if task is None else (task,), size), s
                )
                for (beta, task), s in models.split.items()
            }
        self._priors = {key: m.bottleneck.prior() for key, m in self._split.items()}
        self.latent_shape = nets.latent_shape(size)
        image, latent = (3, size, size), self.latent_shape
        self.flops = nets.Flops(
            nets.forward_flops(self._teacher, image),
            {m.task: nets.forward_flops(m, image) for m in self._local},
            {k: nets.forward_flops(m.encoder, image) for k, m in self._split.items()},
            {k: nets.forward_flops(m.decoder, latent) for k, m in self._split.items()},
        )

    def teacher(self, images: np.ndarray) -> Predictions:
        """The teacher's answers (the server, after full offloading)."""
        return self._answers(_nets().run(self._teacher, _nets().pixels(images)))

    def local(self, images: np.ndarray) -> Predictions:
        """The three on-device models' answers."""
        x = _nets().pixels(images)
        return self._answers({k: v for m in self._local for k, v in _nets().run(m, x).items()})

    def latents(self, images: np.ndarray, beta: float, task: str | None = None) -> np.ndarray:
        """The quantized, clamped latents the device codes: int64 ``(B, C, h, w)``."""
        model = self._split[self._key(beta, task)]
        out = _nets().run(lambda x: {"y": model.latent(x)}, _nets().pixels(images))
        return out["y"].astype(np.int64)

    def split_encode(self, images: np.ndarray, beta: float, task: str | None = None) -> list[bytes]:
        """The device's messages: each image's latent, entropy-coded."""
        prior = self._priors[self._key(beta, task)]
        return [entropy.encode(z, prior) for z in self.latents(images, beta, task)]

    def decode_latents(
        self, payloads: list[bytes], beta: float, task: str | None = None
    ) -> np.ndarray:
        """The latents of the messages ``payloads``: int64 ``(B, C, h, w)``."""
        prior = self._priors[self._key(beta, task)]
        decoded = [entropy.decode(p, self.latent_shape, prior) for p in payloads]
        return np.stack(decoded) if decoded else np.zeros((0, *self.latent_shape), np.int64)

    def split_decode(
        self, payloads: list[bytes], beta: float, task: str | None = None
    ) -> Predictions:
        """The server's answers to the messages (for the tasks a per-task model
        lacks, placeholders: label -1, an empty box and mask)."""
        import torch

        model = self._split[self._key(beta, task)]
        latent = torch.from_numpy(self.decode_latents(payloads, beta, task)).float()
        return self._answers(_nets().run(model.decoder, latent))

    def estimated_bits(
        self, images: np.ndarray, beta: float, task: str | None = None
    ) -> np.ndarray:
        """The model's ``-log2`` likelihood of each image's coded latent: ``(B,)``."""
        model = self._split[self._key(beta, task)]
        bits = _nets().run(
            lambda x: {"b": model.bottleneck.bits(model.latent(x))}, _nets().pixels(images)
        )
        return bits["b"].astype(np.float64)

    def latent_symbols(self, beta: float, task: str | None = None) -> int:
        """Symbols coded per image by the split model ``(beta, task)``."""
        self._key(beta, task)
        return int(np.prod(self.latent_shape))

    @staticmethod
    def merge(per_task: Mapping[str, Predictions]) -> Predictions:
        """One answer from per-task answers (keys ``class``, ``box``, ``mask``)."""
        return Predictions(per_task["class"].labels, per_task["box"].boxes, per_task["mask"].masks)

    def _key(self, beta: float, task: str | None) -> tuple[float, str | None]:
        return _nets().split_key(self._split, beta, task)

    def _answers(self, out: dict[str, np.ndarray]) -> Predictions:
        n, size = len(next(iter(out.values()))), self.config.image_size
        labels = out["class"].argmax(axis=1) if "class" in out else np.full(n, -1)
        boxes = out["box"] if "box" in out else np.zeros((n, 4), np.float32)
        masks = out["mask"] > 0 if "mask" in out else np.zeros((n, size, size), bool)
        return Predictions(labels.astype(np.int64), boxes.astype(np.float32), masks)


def _nets() -> ModuleType:
    from algorithms.split import models  # imports torch: only once inference starts

    return models
