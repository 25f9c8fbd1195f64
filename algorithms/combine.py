"""Combining with neighbours under failures: re-normalized weights.

Node ``k`` combines its own value and the values it heard::

    x_k <- (a_kk x_k + sum_{l heard} a_lk x_l) / (a_kk + sum_{l heard} a_lk)

With every neighbour heard the denominator is 1 (columns of ``A`` sum to 1),
so this is the plain combination step; when messages are lost the weights
of the missing neighbours are spread over the rest, keeping a convex
combination. Cost: ``2 * dim * (heard + 1) + dim`` FLOPs per node.
"""

from __future__ import annotations

import numpy as np

from netsim.kernel import Inbox


def combine(
    own: np.ndarray, self_weight: np.ndarray, inbox: Inbox, link_weight: np.ndarray
) -> np.ndarray:
    """Re-normalized combination for the receivers of ``inbox``.

    ``own`` (receivers x dim) are the receivers' own values, ``self_weight``
    their ``a_kk``, ``link_weight`` the weights of all directed links (indexed
    by ``inbox.link``). Rows are independent: a row's result does not depend on
    the others (so sharding devices over hosts cannot change it).
    """
    from scipy import sparse  # here, not at import: SciPy takes a second to load

    n = len(own)
    w = link_weight[inbox.link]
    total = self_weight[:, None] * own
    if len(w):
        mix = sparse.csr_array((w, inbox.row, inbox.indptr), shape=(n, len(inbox.payload)))
        total = total + mix @ inbox.payload
    norm = self_weight + np.bincount(inbox.receiver(), weights=w, minlength=n)
    safe = norm > 0
    if safe.all():
        return total / norm[:, None]
    out = own.copy()  # heard nobody and gives itself no weight: keep its value
    out[safe] = total[safe] / norm[safe, None]
    return out


def combine_flops(dim: int, heard: np.ndarray) -> np.ndarray:
    """FLOPs of :func:`combine` per receiver."""
    return 2.0 * dim * (np.asarray(heard, dtype=float) + 1) + dim
