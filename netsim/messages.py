"""Messages as the network records them: a batch per send call (arrays by
message and by transmission, with each message's fate), and the counters
``sent = delivered + dropped + in_flight``, and the vector helpers that build
and account batches in time proportional to their size. The rules that
decide fates are in :mod:`netsim.network`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

OK, DROPPED, CANCELLED, LOST = 0, 1, 2, 3


@dataclass(frozen=True)
class MessageCounts:
    """Counters at one instant; ``sent == delivered + dropped + in_flight``."""

    sent: int
    delivered: int
    dropped: int
    in_flight: int

    def as_dict(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "in_flight": self.in_flight,
        }


@dataclass(eq=False)
class MessageBatch:
    """Messages created by one send call. Arrays are indexed by message;
    ``tx_*`` arrays by transmission (a broadcast is one transmission).

    ``payload`` is the protocol's: the network never reads it.
    """

    src: np.ndarray
    dst: np.ndarray
    link: np.ndarray
    tx: np.ndarray
    size: np.ndarray
    t_queue: np.ndarray
    t_arrive: np.ndarray
    fate: np.ndarray
    drop_time: np.ndarray
    tx_src: np.ndarray
    tx_size: np.ndarray
    tx_start: np.ndarray
    tx_end: np.ndarray
    payload: Any = None
    last_arrival: float = field(init=False)

    def __post_init__(self) -> None:
        self.last_arrival = float(self.t_arrive.max()) if len(self.t_arrive) else -np.inf

    def __len__(self) -> int:
        return len(self.src)


def fifo_ranks(src: np.ndarray, t_queue: np.ndarray) -> list[np.ndarray]:
    """Messages grouped by their rank in their sender's queue (by ``t_queue``,
    ties in the given order): every sender's k-th message at once."""
    if len(src) <= 1:  # one message (gossip): no sort
        return [np.arange(len(src))]
    order = np.lexsort((np.arange(len(src)), t_queue, src))
    first = np.r_[True, src[order][1:] != src[order][:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(src)), 0))
    rank = np.arange(len(src)) - group_start
    return [order[rank == r] for r in range(int(rank.max()) + 1)]


def accumulate(total: np.ndarray, index: np.ndarray, weights: np.ndarray) -> None:
    """``total += bincount(index, weights, minlength=len(total))``, same sums in
    the same order, in O(k log k) for few indices rather than O(len(total))."""
    if len(index) == 1:  # one message (gossip): no sort, no bincount
        total[index[0]] += weights[0]
    elif len(index) * 16 >= len(total):
        total += np.bincount(index, weights=weights, minlength=len(total))
    elif len(index):
        bins, which = np.unique(index, return_inverse=True)
        total[bins] += np.bincount(which, weights=weights, minlength=len(bins))
