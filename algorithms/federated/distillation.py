"""Knowledge transfer between device prototypes, as pure functions: the
distillation loss, distillation on a public set, task vectors and their
merge, and the merging-coefficient candidates.

References: FedDF, Lin et al., "Ensemble distillation for robust model fusion
in federated learning", NeurIPS 2020; TAKFL, Morafah et al., NeurIPS 2024
(``papers.md`` section 5); task arithmetic, Ilharco et al., ICLR 2023.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where it is used: it takes seconds to load
    import torch
    from torch import nn


def kd_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    temperature: float,
    own: torch.Tensor | None = None,
    own_temperature: float = 20.0,
    own_weight: float = 0.0,
) -> torch.Tensor:
    """Temperature-scaled distillation loss, mean over the batch::

        T^2 KL(softmax(teacher / T) || softmax(student / T))
          + own_weight * T_s^2 KL(softmax(own / T_s) || softmax(student / T_s))

    The second term (TAKFL's self-regularization) keeps the student near its
    own logits ``own`` before distillation. ``T^2`` keeps gradient scales
    comparable across temperatures (Hinton et al. 2015)."""
    import torch.nn.functional as F

    def kl(target: torch.Tensor, t: float) -> torch.Tensor:
        return F.kl_div(
            F.log_softmax(student / t, dim=1), F.softmax(target / t, dim=1), reduction="batchmean"
        )

    loss = temperature**2 * kl(teacher, temperature)
    if own is not None and own_weight > 0:
        loss = loss + own_weight * own_temperature**2 * kl(own, own_temperature)
    return loss


def logits(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """The model's logits on ``x`` (evaluation mode, no gradients)."""
    import torch

    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def distill(
    model: nn.Module,
    x: np.ndarray,
    teacher: np.ndarray,
    *,
    temperature: float,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    own: np.ndarray | None = None,
    own_temperature: float = 20.0,
    own_weight: float = 0.0,
) -> None:
    """Train ``model`` in place toward ``teacher`` logits on the unlabeled ``x``
    (Adam, shuffled mini-batches), with optional self-regularization toward
    ``own`` logits."""
    import torch

    xt, tt = torch.from_numpy(x), torch.from_numpy(np.asarray(teacher, dtype=np.float32))
    ot = None if own is None else torch.from_numpy(np.asarray(own, dtype=np.float32))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=generator)
        for start in range(0, len(xt), batch_size):
            b = order[start : start + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = kd_loss(
                model(xt[b]),
                tt[b],
                temperature,
                None if ot is None else ot[b],
                own_temperature,
                own_weight,
            )
            loss.backward()
            opt.step()


def merge(base: np.ndarray, task_vectors: np.ndarray, lambdas: np.ndarray) -> np.ndarray:
    """Task arithmetic: ``base + sum_j lambdas[j] * task_vectors[j]``."""
    tv = np.asarray(task_vectors, dtype=np.float64).reshape(len(lambdas), -1)
    return (np.asarray(base, dtype=np.float64) + np.asarray(lambdas, float) @ tv).astype(np.float32)


def merge_candidates(
    teachers: int, own: int | None, random: int, rng: np.random.Generator
) -> np.ndarray:
    """Merging coefficients to try (rows sum to 1), for the heuristic search:

    - equal weights;
    - with ``own`` (the student's own prototype among the teachers), weights
      0.9, 0.8, ... down to above ``1/teachers`` on it, the rest shared equally;
    - ``random`` draws of each of three sparsities: sorted, normalized
      ``Beta(1, 100)**e`` for ``e`` in 1, 5, 10 (larger ``e``: one teacher
      dominates; sorted, so the last teachers, the larger prototypes, weigh
      most).
    """
    rows = [np.full(teachers, 1.0 / teachers)]
    if own is not None and teachers > 1:
        w = 0.9
        while w > 1.0 / teachers + 1e-9:
            row = np.full(teachers, (1 - w) / (teachers - 1))
            row[own] = w
            rows.append(row)
            w -= 0.1
    for e in (1, 5, 10):
        for _ in range(random):
            row = np.sort(rng.beta(1.0, 100.0, teachers) ** e)
            if row.sum() > 0:  # all draws can underflow to zero
                rows.append(row / row.sum())
    return np.array(rows)
