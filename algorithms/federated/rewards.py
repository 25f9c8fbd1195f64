"""Contribution estimates and reward allocation for Aequa (``papers.md``
section 4), as the server can compute them from what it observes.

**Contribution** of a client: the cosine similarity of its update (its change
of the model) with the weighted average of the *other* updates of the round
(leaving its own out removes the bias of a large or noisy update towards
itself), averaged over the rounds its update was used, each round weighted by
how much the round's aggregate lowered the loss on the server's validation
split (rounds that made it worse weigh nothing). Why weighted: near
convergence the updates of a weighted average cancel out, and a client's
cosine with the others measures its local drift, turning negative most for
the largest clients; the rounds in which the model moves are those that say
who moves it (measured in docs/aequa.md). Without any improving round, the
plain mean.

A free rider that returns the model unchanged sends a zero change: cosine 0.
One that sends noise is uncorrelated with the others: its cosine has standard
deviation ``1/sqrt(d)`` for ``d`` parameters, and its weighted mean
``1/sqrt(d n_eff)`` with ``n_eff = (sum w)^2 / sum w^2``. Contributions below
``SIGNIFICANCE / sqrt(d n_eff)`` are taken as none.

**Allocation** (a proxy: the paper's exact rule is *unverified*): contributions
map linearly onto the accuracy range ``[acc(p_min), acc(1)]`` of the global
model's width -> accuracy curve on the server's validation split, the top
contributor at ``acc(1)`` and no contribution at ``acc(p_min)``. Each target
accuracy is turned into the smallest width whose accuracy (on the curve made
non-decreasing) reaches it. The top contributor gets the full model.
"""

from __future__ import annotations

import numpy as np

SIGNIFICANCE = 3.0  # standard deviations of the cosine of unrelated vectors


def loo_cosines(deltas: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Cosine of each row of ``deltas`` with the ``weights``-weighted average
    of the other rows (0 where either vector is zero, or there are no others)."""
    deltas = np.asarray(deltas, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    total = weights.sum()
    weighted_sum = weights @ deltas
    out = np.zeros(len(deltas))
    for i, d in enumerate(deltas):
        others = weighted_sum - weights[i] * d
        if total - weights[i] <= 0:
            continue
        norm = np.linalg.norm(d) * np.linalg.norm(others)
        if norm > 0:
            out[i] = float(d @ others) / norm
    return out


def significance_floor(parameters: int, rounds: np.ndarray) -> np.ndarray:
    """The contribution below which a client's mean cosine over ``rounds``
    (effective) observations is indistinguishable from that of random noise."""
    rounds = np.maximum(np.asarray(rounds, dtype=float), 1.0)
    return SIGNIFICANCE / np.sqrt(parameters * rounds)


def weighted_contribution(
    cosines: np.ndarray, improvements: np.ndarray, parameters: int
) -> tuple[float, float]:
    """A client's contribution from its cosines and the rounds' validation
    improvements, and its significance floor."""
    cosines = np.asarray(cosines, dtype=float)
    w = np.maximum(np.asarray(improvements, dtype=float), 0.0)
    if w.sum() <= 0:
        w = np.ones(len(cosines))
    effective = w.sum() ** 2 / (w**2).sum()
    value = float(w @ cosines / w.sum())
    return value, float(significance_floor(parameters, np.array([effective]))[0])


def allocate(
    contributions: np.ndarray, widths: np.ndarray, curve: np.ndarray, floor: np.ndarray | float
) -> np.ndarray:
    """Each client's reward width (from ``widths``, ascending from ``p_min``
    to 1) for its contribution, given the accuracy ``curve`` at ``widths``."""
    c = np.maximum(np.asarray(contributions, dtype=float), 0.0)
    c = np.where(c > np.asarray(floor), c, 0.0)
    widths = np.asarray(widths, dtype=float)
    out = np.full(len(c), widths[0])
    top = c.max(initial=0.0)
    if top <= 0:
        return out
    envelope = np.maximum.accumulate(np.asarray(curve, dtype=float))
    target = envelope[0] + (c / top) * (envelope[-1] - envelope[0])
    index = np.searchsorted(envelope, target - 1e-12, side="left")
    out = widths[np.minimum(index, len(widths) - 1)]
    out[c == top] = widths[-1]
    return out
