"""The networks of multi-task split computing on the shapes set (Matsubara,
Mendula & Levorato, "Ladon", WACV 2025; ``papers.md`` section 6).

Inputs are float images ``(B, 3, S, S)`` in [0, 1], ``S`` divisible by 8.
Every network answers the tasks of :data:`TASKS` it has, as raw outputs:
``class`` logits ``(B, 4)``, ``box`` ``(B, 4)`` ``(x0, y0, x1, y1)`` after a
sigmoid, ``mask`` logits ``(B, S, S)``.

- :class:`Teacher` (server, 24-48 channels): a stem down to ``S/4`` (the
  features the split model distils), a trunk, and one head per task (the
  mask head an upsampling decoder);
- :class:`OnDevice`: one lightweight network per task (6-12 channels, two
  convolutions before the head); all three run on the device for ``local``
  inference;
- :class:`SplitModel`: a small device encoder (three convolutions to
  ``S/4``, a bottleneck of :data:`LATENT` channels), the
  :class:`EntropyBottleneck`, and on the server a
  decoder to the teacher's stem features followed by the teacher's trunk and
  heads (copied, then fine-tuned). With all tasks it sends one bitstream;
  with one task it is that task's own model (``split_per_task``).

Convolutions are followed by batch normalisation (training in a few epochs
needs it) and ReLU. FLOPs are counted forward-only by torch's FLOP counter
on the modules themselves (:func:`forward_flops`): convolutions and matrix
products, not elementwise layers (batch normalisation folds into the
convolution at inference). At ``S = 32``: teacher 9.5 MFLOPs, the three
on-device models 0.71, split encoder 0.63 and split server side 8.2 (one
task: 6.0-7.5).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from algorithms.split import entropy
from algorithms.split.shapes import ShapeSet

M = TypeVar("M", bound=nn.Module)
TASKS = ("class", "box", "mask")
CLASSES = 4
STEM = 48  # channels of the teacher's stem features, which the split decoder reproduces
WIDTH = 48  # teacher trunk and heads
LATENT = 6  # bottleneck channels of the split model, at S/4
LATENT_GAIN = 8.0  # the encoder's output scale at the start, against rounding's unit step
ENCODER = 16  # split encoder width
LIGHT = 12  # on-device models' width
BOX_WEIGHT = 5.0  # L1 on box coordinates (fractions of the side) next to cross-entropies


def _conv(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]


def head(task: str, width: int, size: int) -> nn.Module:
    """The ``task`` head on features ``(B, width, S/4, S/4)`` of ``S``-pixel images."""
    if task == "class":
        return nn.Sequential(
            *_conv(width, width // 2, 2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(width // 2, CLASSES),
        )
    if task == "box":
        # Positions need the spatial layout: flatten the S/8 map rather than pool it.
        cells = (size // 8) ** 2
        return nn.Sequential(
            *_conv(width, width // 2, 2),
            nn.Flatten(),
            nn.Linear(width // 2 * cells, 4),
            nn.Sigmoid(),
        )
    if task == "mask":
        # Up to S/2 by a transposed convolution, then 2x2 sub-pixels per channel
        # (Shi et al., CVPR 2016): a quarter of the FLOPs of a second transposed conv.
        return nn.Sequential(
            nn.ConvTranspose2d(width, width // 3, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width // 3, 4, 3, padding=1),
            nn.PixelShuffle(2),
            nn.Flatten(1, 2),  # (B, 1, S, S) -> (B, S, S)
        )
    raise ValueError(f"task: expected one of {', '.join(TASKS)}, got {task!r}")


class Heads(nn.Module):
    """A trunk on ``(B, STEM, S/4, S/4)`` features and the heads of ``tasks``."""

    def __init__(self, tasks: tuple[str, ...], size: int) -> None:
        super().__init__()
        self.tasks = tasks
        self.trunk = nn.Sequential(*_conv(STEM, WIDTH))
        self.heads = nn.ModuleDict({t: head(t, WIDTH, size) for t in tasks})

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.trunk(features)
        return {t: self.heads[t](z) for t in self.tasks}


class Teacher(nn.Module):
    """The server's multi-head network: ``stem`` (to ``S/4``), trunk and heads."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_conv(3, 24, 2), *_conv(24, STEM, 2), *_conv(STEM, STEM))
        self.rest = Heads(TASKS, size)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.rest(self.stem(x))


class OnDevice(nn.Module):
    """A lightweight single-task network run on the device."""

    def __init__(self, task: str, size: int) -> None:
        super().__init__()
        self.task = task
        self.body = nn.Sequential(*_conv(3, LIGHT // 2, 2), *_conv(LIGHT // 2, LIGHT, 2))
        self.head = head(task, LIGHT, size)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {self.task: self.head(self.body(x))}


class Decoder(nn.Module):
    """The server side of a split model: the decoded latent to the teacher's
    stem features (``distil``), then trunk and heads."""

    def __init__(self, tasks: tuple[str, ...], size: int) -> None:
        super().__init__()
        self.distil = nn.Sequential(*_conv(LATENT, STEM), nn.Conv2d(STEM, STEM, 3, padding=1))
        self.rest = Heads(tasks, size)

    def forward(self, latent: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.rest(self.distil(latent))


class Gain(nn.Module):
    """Multiplies by a constant: the latent starts on a scale where rounding
    keeps information (a short training cannot grow it from ~0.1 by itself)."""

    def __init__(self, gain: float) -> None:
        super().__init__()
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain


class SplitModel(nn.Module):
    """Device ``encoder`` -> :class:`EntropyBottleneck` -> server ``decoder``."""

    def __init__(self, tasks: tuple[str, ...], size: int) -> None:
        super().__init__()
        self.tasks = tasks
        self.encoder = nn.Sequential(
            *_conv(3, ENCODER, 2),
            *_conv(ENCODER, ENCODER, 2),
            nn.Conv2d(ENCODER, LATENT, 3, padding=1),
            Gain(LATENT_GAIN),
        )
        self.bottleneck = EntropyBottleneck(LATENT)
        self.decoder = Decoder(tasks, size)

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """The device side: the latent, clamped and rounded (in evaluation)."""
        return self.bottleneck.quantize(self.encoder(x))[0]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.decoder(self.latent(x))

    def from_teacher(self, teacher: Teacher) -> SplitModel:
        """Copy the teacher's trunk and this model's heads from it."""
        rest = self.decoder.rest
        rest.trunk.load_state_dict(teacher.rest.trunk.state_dict())
        for t in self.tasks:
            rest.heads[t].load_state_dict(teacher.rest.heads[t].state_dict())
        return self


class EntropyBottleneck(nn.Module):
    """Quantization and a learned per-channel logistic density (mean and
    log-scale) for a latent of ``channels`` channels; the math is
    :func:`algorithms.split.entropy.likelihood`."""

    def __init__(self, channels: int, support: int = entropy.SUPPORT) -> None:
        super().__init__()
        self.support = support
        self.mean = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))

    def quantize(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(for the decoder, for the rate)``, both clamped to the support: in
        training the rounded latent (straight-through gradient) and the latent
        plus ``U(-1/2, 1/2)`` noise; in evaluation both rounded."""
        y = y.clamp(-self.support, self.support)
        if not self.training:
            q = torch.round(y)
            return q, q
        hard = y + (torch.round(y) - y).detach()
        return hard, y + torch.rand_like(y) - 0.5

    def likelihood(self, y: torch.Tensor) -> torch.Tensor:
        return entropy.likelihood(y, self.mean, self.log_scale.exp(), self.support)

    def bits(self, y: torch.Tensor) -> torch.Tensor:
        """``-log2`` of the likelihood summed per image: ``(B,)`` bits."""
        return -torch.log2(self.likelihood(y)).sum(dim=(1, 2, 3))

    def fit_symbols(self, q: torch.Tensor, steps: int = 300) -> None:
        """Refit the density to coded latents ``q`` (integers, ``(N, C, h, w)``)
        by maximum likelihood of the symbols themselves (training saw noisy
        ones): the coder's model, so that the estimate of bits is the code's."""
        r = self.support
        symbols = (q.transpose(0, 1).reshape(len(self.mean), -1) + r).long()
        counts = torch.stack([torch.bincount(c, minlength=2 * r + 1) for c in symbols]).float()
        support = torch.arange(-r, r + 1, dtype=torch.float32).expand(1, len(counts), -1)
        opt = torch.optim.Adam([self.mean, self.log_scale], lr=0.05)
        for _ in range(steps):
            nll = -(counts * torch.log2(self.likelihood(support[..., None])[..., 0])).sum()
            opt.zero_grad(set_to_none=True)
            (nll / counts.sum()).backward()
            opt.step()

    def prior(self) -> entropy.Prior:
        """The coder's model: the learned parameters as numpy arrays."""
        return entropy.Prior(
            self.mean.detach().numpy().astype(np.float32, copy=True),
            self.log_scale.detach().exp().numpy().astype(np.float32, copy=True),
            self.support,
        )


@dataclass(frozen=True)
class Flops:
    """Forward FLOPs per image, counted on the models: ``teacher``;
    ``local_per_task[task]`` (:attr:`local`: all three); the split models'
    ``device`` and ``server`` sides per ``(beta, task)`` key (``task`` None:
    shared); ``coding_per_symbol``: entropy coding, each side, per symbol."""

    teacher: float
    local_per_task: dict[str, float]
    device: dict[tuple[float, str | None], float]
    server: dict[tuple[float, str | None], float]
    coding_per_symbol: float = entropy.CODING_FLOPS_PER_SYMBOL

    @property
    def local(self) -> float:
        return sum(self.local_per_task.values())

    def split_device(self, beta: float, task: str | None = None) -> float:
        return self.device[split_key(self.device, beta, task)]

    def split_server(self, beta: float, task: str | None = None) -> float:
        return self.server[split_key(self.server, beta, task)]


def split_key(
    keys: Mapping[tuple[float, str | None], object], beta: float, task: str | None
) -> tuple[float, str | None]:
    """``(beta, task)`` if a split model was trained for it; else a ValueError
    naming those that were."""
    if (beta, task) not in keys:
        trained = ", ".join(f"beta={b:g} {t or 'shared'}" for b, t in keys)
        raise ValueError(f"no split model for beta={beta:g}, task={task}; trained: {trained}")
    return (beta, task)


def latent_shape(size: int) -> tuple[int, int, int]:
    """``(C, h, w)`` of the split model's latent for ``size``-pixel images."""
    return (LATENT, size // 4, size // 4)


def forward_flops(module: nn.Module, input_shape: tuple[int, ...]) -> float:
    """FLOPs of a forward pass of ``module`` per example of ``input_shape``."""
    from torch.utils.flop_counter import FlopCounterMode

    batch = 2
    probe = copy.deepcopy(module).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        probe(torch.zeros((batch, *input_shape)))
    return counter.get_total_flops() / batch


def run(
    fn: Callable[[torch.Tensor], dict[str, torch.Tensor]], x: torch.Tensor, chunk: int = 256
) -> dict[str, np.ndarray]:
    """``fn`` on ``x`` in chunks, one torch thread, no gradients; outputs as numpy."""
    from algorithms.models import torch_threads

    parts: dict[str, list[torch.Tensor]] = {}
    with torch_threads(1), torch.no_grad():
        for start in range(0, max(len(x), 1), chunk):
            for k, v in fn(x[start : start + chunk]).items():
                parts.setdefault(k, []).append(v)
    return {k: torch.cat(v).numpy() for k, v in parts.items()}


def loaded(model: M, state: Mapping[str, np.ndarray]) -> M:
    """``model`` with the weights ``state``, in evaluation mode."""
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return model.eval()


# ---------------------------------------------------------------- training steps
@dataclass(frozen=True)
class Tensors:
    """A shape set as training tensors: images ``x`` float ``(N, 3, S, S)``,
    ``labels``, ``boxes``, ``masks`` (float)."""

    x: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor
    masks: torch.Tensor

    @classmethod
    def of(cls, data: ShapeSet) -> Tensors:
        # channels-last: oneDNN's faster layout for these convolutions on CPU (about 20%)
        return cls(
            pixels(data.images).contiguous(memory_format=torch.channels_last),
            torch.from_numpy(data.labels),
            torch.from_numpy(data.boxes),
            torch.from_numpy(data.masks.astype(np.float32)),
        )

    def __len__(self) -> int:
        return len(self.labels)


def pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(B, S, S, 3)`` images as float ``(B, 3, S, S)`` in [0, 1]."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images: expected uint8 (B, S, S, 3), got {images.dtype} {images.shape}")
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float() / 255


def task_loss(out: dict[str, torch.Tensor], data: Tensors, i: torch.Tensor) -> torch.Tensor:
    """The sum of the losses of the tasks in ``out`` on the examples ``i``:
    cross-entropy (class), ``BOX_WEIGHT`` x L1 (box), BCE + soft dice (mask)."""
    from torch.nn import functional as F

    loss = torch.zeros(())
    if "class" in out:
        loss = loss + F.cross_entropy(out["class"], data.labels[i])
    if "box" in out:
        loss = loss + BOX_WEIGHT * F.l1_loss(out["box"], data.boxes[i])
    if "mask" in out:
        target = data.masks[i]
        loss = loss + F.binary_cross_entropy_with_logits(out["mask"], target)
        p = torch.sigmoid(out["mask"])
        overlap = (p * target).sum(dim=(1, 2))
        dice = (2 * overlap + 1) / (p.sum(dim=(1, 2)) + target.sum(dim=(1, 2)) + 1)
        loss = loss + (1 - dice).mean()
    return loss


def fit(
    model: nn.Module,
    groups: Sequence[tuple[Iterable[torch.Tensor], float]],
    n: int,
    batch: int,
    epochs: int,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
) -> None:
    """Adam on the parameter ``groups`` ``(parameters, peak learning rate)``
    with a one-cycle schedule: ``epochs`` passes over examples ``0..n-1`` in
    random order, ``loss_fn(indices)`` per batch (the order comes from the
    global torch RNG: fork and seed it first)."""
    if epochs > 0:
        lrs = [lr for _, lr in groups]
        opt = torch.optim.Adam([{"params": list(p), "lr": lr} for p, lr in groups])
        steps = epochs * -(-n // batch)
        schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lrs, total_steps=steps)
        # channels-last weights for oneDNN, in place (the optimizer holds the same tensors)
        for p in model.parameters():
            if p.dim() == 4:
                p.data = p.data.contiguous(memory_format=torch.channels_last)
        model.train()
        for _ in range(epochs):
            order = torch.randperm(n)
            for start in range(0, n, batch):
                loss = loss_fn(order[start : start + batch])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                schedule.step()
    model.eval()
