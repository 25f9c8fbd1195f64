"""Combining with neighbours under failures: re-normalized weights.

Node ``k`` combines its own value and the values it heard::

    x_k <- (a_kk x_k + sum_{l heard} a_lk x_l) / (a_kk + sum_{l heard} a_lk)

With every neighbour heard the denominator is 1 (columns of ``A`` sum to 1),
so this is the plain combination step; when messages are lost the weights
of the missing neighbours are spread over the rest, keeping a convex
combination. Cost: ``2 * dim * (heard + 1) + dim`` FLOPs per node.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from netsim.content_cache import ContentCache, read_only
from netsim.kernel import HostSetup, Inbox


def combine(
    own: np.ndarray,
    self_weight: np.ndarray,
    inbox: Inbox,
    link_weight: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Re-normalized combination for the receivers of ``inbox``.

    ``own`` (receivers x dim) are the receivers' own values, ``self_weight``
    their ``a_kk``, ``link_weight`` the weights of all directed links (indexed
    by ``inbox.link``). Rows are independent: a row's result does not depend on
    the others (so sharding devices over hosts cannot change it). ``out``
    (optional, not overlapping ``own``): where to write the result.
    """
    # kept for equal links and weights; found by identity when they are
    # frozen (an inbox's indices, and the weights of :func:`combination_weights`)
    mix, heard = _MIXES.get(
        len(inbox.payload),
        (inbox.indptr, inbox.row, inbox.link, link_weight),
        lambda: _mix(inbox, link_weight[inbox.link]),
    )
    norm = self_weight + heard
    total = np.multiply(self_weight[:, None], own, out=out)
    if mix is not None:
        total += mix @ inbox.payload
    safe = norm > 0
    if safe.all():
        total /= norm[:, None]
        return total
    total[safe] /= norm[safe, None]
    total[~safe] = own[~safe]  # heard nobody and gives itself no weight: keep its value
    return total


def _mix(inbox: Inbox, w: np.ndarray) -> tuple[Any, np.ndarray]:
    """The receivers' weights of the payload rows (a sparse matrix, ``None``
    when nothing was heard) and each receiver's total weight of them."""
    from scipy import sparse  # here, not at import: SciPy takes a second to load

    n = len(inbox.indptr) - 1
    mix = None
    if len(w):
        mix = sparse.csr_array(
            (w, inbox.row, inbox.indptr), shape=(n, len(inbox.payload)), copy=True
        )
    heard = np.bincount(inbox.receiver(), weights=w, minlength=n)
    heard.flags.writeable = False
    return mix, heard


# a synchronous protocol combines over the same links round after round
_MIXES: ContentCache[tuple[Any, np.ndarray]] = ContentCache()


def combination_weights(setup: HostSetup) -> tuple[np.ndarray, np.ndarray]:
    """The own weights of the host's devices and the weights of all links,
    frozen (:mod:`netsim.content_cache`: :func:`combine` then finds the
    matrix it keeps for them by identity)."""
    assert setup.self_weight is not None and setup.link_weight is not None
    self_weight, link_weight = read_only(setup.self_weight[setup.devices], setup.link_weight)
    return self_weight, link_weight


def combine_flops(dim: int, heard: np.ndarray) -> np.ndarray:
    """FLOPs of :func:`combine` per receiver."""
    return 2.0 * dim * (np.asarray(heard, dtype=float) + 1) + dim
