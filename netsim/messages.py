"""Messages as the network records them: a batch per send call (arrays by
message and by transmission, with each message's fate), and the counters
``sent = delivered + dropped + in_flight``. The rules that decide fates are
in :mod:`netsim.network`."""

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
