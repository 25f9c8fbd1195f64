"""The learned entropy bottleneck of the split model and its real coder.

The latent ``y`` (``C`` channels) is clamped to the support ``[-R, R]`` and
rounded to integers; each channel has a learned factorized density, a
logistic of mean ``mu_c`` and scale ``s_c``, discretised to the support:

    p_c(k) = F_c(k + 1/2) - F_c(k - 1/2),   F_c(x) = sigmoid((x - mu_c) / s_c),

with the tails folded into the end symbols (``F_c(-R - 1/2) := 0``,
``F_c(R + 1/2) := 1``), so that ``p_c`` sums to one over the support and is
exactly the model the coder uses. Training replaces rounding by additive
uniform noise ``U(-1/2, 1/2)`` for the rate (Ballé, Laparra & Simoncelli,
"End-to-end optimized image compression", ICLR 2017); the decoder sees the
rounded latent through a straight-through estimator, as at inference (the
"mixed" quantization of Minnen & Singh, ICIP 2020), so that what is coded is
what the decoder was trained on. The rate is ``-log2 p`` summed, in bits.
After training the density is refit to the rounded latents of the training
set (maximum likelihood of the symbols themselves).

The torch module holding the parameters is
:class:`algorithms.split.models.EntropyBottleneck` (this module does not
import torch, so that importing :mod:`algorithms` stays fast); it calls
:func:`likelihood`. Coding is rANS (``constriction.stream.stack.AnsCoder``)
with one ``Categorical`` model per channel built from the same ``p_c``
(:meth:`Prior.pmf`); the message is the coder's 32-bit words as bytes, so its
size is ``4 * words``: the model's bits plus about one word.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch and constriction are imported where used: torch takes seconds
    import torch

SUPPORT = 15  # R: coded symbols lie in [-R, R]
LIKELIHOOD_FLOOR = 1e-9  # keeps -log2 p finite (at most ~30 bits) for symbols the model misses
# Operations per coded symbol, on either side: rounding and clamping (~2), the
# symbol's CDF lookup (decoder: a search over 2R+1 = 31 entries, ~5 compares),
# rANS's integer division, multiply-add and renormalisation (~20), order of ~30.
CODING_FLOPS_PER_SYMBOL = 30.0


def likelihood(
    y: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor, support: int
) -> torch.Tensor:
    """``F(y + 1/2) - F(y - 1/2)`` per element of ``y`` ``(B, C, h, w)``, for
    the per-channel logistic ``mean``, ``scale`` ``(C,)``, the tails folded
    into the end symbols, floored at :data:`LIKELIHOOD_FLOOR`. Differentiable
    in all three (training's rate); ``y`` may be noisy (not integers)."""
    import torch

    mean = mean.view(1, -1, 1, 1)
    scale = scale.view(1, -1, 1, 1)
    inf = torch.full_like(y, float("inf"))
    upper = torch.where(y > support - 0.5, inf, (y + 0.5 - mean) / scale)
    lower = torch.where(y < 0.5 - support, -inf, (y - 0.5 - mean) / scale)
    # Take the difference on the side of the tail it is in: no cancellation near 1.
    sign = torch.where(upper + lower > 0, -1.0, 1.0)
    p = (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()
    return p.clamp_min(LIKELIHOOD_FLOOR)


@dataclass(frozen=True)
class Prior:
    """Per-channel logistic ``mean`` and ``scale`` (float32 ``(C,)``) on the
    support ``[-support, support]``."""

    mean: np.ndarray
    scale: np.ndarray
    support: int

    def pmf(self) -> np.ndarray:
        """``(C, 2R + 1)`` probabilities of the symbols ``-R..R`` (float64)."""
        r = self.support
        k = np.arange(-r, r + 1, dtype=np.float64)
        mean = self.mean.astype(np.float64)[:, None]
        scale = self.scale.astype(np.float64)[:, None]
        upper = np.where(k < r, (k + 0.5 - mean) / scale, np.inf)
        lower = np.where(k > -r, (k - 0.5 - mean) / scale, -np.inf)
        sign = np.where(upper + lower > 0, -1.0, 1.0)
        return np.abs(_sigmoid(sign * upper) - _sigmoid(sign * lower))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def encode(symbols: np.ndarray, prior: Prior) -> bytes:
    """One latent ``(C, h, w)`` of integers in the support, as rANS bytes
    (channel by channel, each with its own model). Symbols outside the
    support raise: clamp first (:meth:`EntropyBottleneck.quantize` does).
    Cost: :data:`CODING_FLOPS_PER_SYMBOL` per symbol, plus ``O(C R)`` for the models."""
    import constriction

    symbols = np.asarray(symbols)
    r = prior.support
    if symbols.ndim != 3 or symbols.shape[0] != len(prior.mean):
        raise ValueError(f"symbols: expected ({len(prior.mean)}, h, w), got {symbols.shape}")
    if symbols.size and (symbols.min() < -r or symbols.max() > r):
        raise ValueError(f"symbols: outside the support [-{r}, {r}]; clamp them first")
    models = _models(prior)
    coder = constriction.stream.stack.AnsCoder()
    # A stack: the last channel goes in first so that decoding yields channel 0 first.
    for c in reversed(range(symbols.shape[0])):
        coder.encode_reverse((symbols[c].ravel() + r).astype(np.int32), models[c])
    return coder.get_compressed().astype("<u4").tobytes()


def decode(data: bytes, shape: tuple[int, int, int], prior: Prior) -> np.ndarray:
    """The latent ``shape`` ``(C, h, w)`` (int64) that :func:`encode` coded into ``data``."""
    import constriction

    if len(data) % 4:
        raise ValueError(f"data: expected whole 32-bit words, got {len(data)} bytes")
    coder = constriction.stream.stack.AnsCoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
    models = _models(prior)
    c, h, w = shape
    out = np.empty(shape, dtype=np.int64)
    for i in range(c):
        out[i] = coder.decode(models[i], h * w).reshape(h, w)
    return out - prior.support


def _models(prior: Prior) -> list[object]:
    import constriction

    categorical = constriction.stream.model.Categorical
    return [categorical(row, perfect=False) for row in prior.pmf()]
