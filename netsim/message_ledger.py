"""The network's ledger: the message batches not yet retired, and the
totals of those that were.

A batch is *live* until its last message has arrived (or been dropped); it is
then *retired*: folded into the message counters and byte totals, O(log
batches) each (a heap of last arrivals). What the counters say at a time
between is the retired totals plus what the live batches show by then.
Deciding fates (failures, losses) is the :class:`~netsim.network.Network`'s;
the ledger only keeps and counts.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

import numpy as np

from netsim.messages import CANCELLED, DROPPED, LOST, OK, MessageBatch, MessageCounts, accumulate


class MessageLedger:
    """Live batches in order of creation, and the totals of retired ones."""

    def __init__(self, n_nodes: int, n_links: int) -> None:
        self.n_nodes = n_nodes
        self._live: dict[int, MessageBatch] = {}  # batches not retired, in order of creation
        self._arrivals: list[tuple[float, int]] = []  # (last arrival, key) of each live batch
        self._next_key = 0
        self._sent = self._delivered = self._dropped = 0
        self.link_bytes = np.zeros(n_links)
        self.node_bytes_sent = np.zeros(n_nodes)
        self.node_bytes_received = np.zeros(n_nodes)

    def add(self, batch: MessageBatch) -> None:
        self._live[self._next_key] = batch
        heapq.heappush(self._arrivals, (batch.last_arrival, self._next_key))
        self._next_key += 1

    @property
    def live(self) -> Iterable[MessageBatch]:
        """The batches not retired, in order of creation."""
        return self._live.values()

    def retire(self, now: float) -> None:
        """Fold the batches whose messages have all arrived by ``now`` into the totals."""
        arrivals = self._arrivals
        while arrivals and arrivals[0][0] <= now:
            b = self._live.pop(heapq.heappop(arrivals)[1])
            if OK == 0 and not b.fate.any():  # every message delivered: no masks
                self._sent += len(b)
                self._delivered += len(b)
                self._add_bytes(b, slice(None), slice(None))
                continue
            self._sent += int((b.fate != CANCELLED).sum())
            self._delivered += int((b.fate == OK).sum())
            self._dropped += int(((b.fate == DROPPED) | (b.fate == LOST)).sum())
            self._add_bytes(b, b.fate != CANCELLED, b.fate == OK)

    def _add_bytes(
        self, b: MessageBatch, sent: np.ndarray | slice, delivered: np.ndarray | slice
    ) -> None:
        accumulate(self.link_bytes, b.link[sent], b.size[sent])
        accumulate(self.node_bytes_received, b.dst[delivered], b.size[delivered])
        tx_sent = np.zeros(len(b.tx_src), dtype=bool)
        tx_sent[b.tx[sent]] = True
        accumulate(self.node_bytes_sent, b.tx_src[tx_sent], b.tx_size[tx_sent])

    def node_bytes_by(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Bytes each node finished transmitting by ``t``, and bytes delivered to it by ``t``."""
        n = self.n_nodes
        sent, received = self.node_bytes_sent.copy(), self.node_bytes_received.copy()
        for b in self.live:
            tx_sent = np.zeros(len(b.tx_src), dtype=bool)
            tx_sent[b.tx[b.fate != CANCELLED]] = True
            done = tx_sent & (b.tx_end <= t)
            sent += np.bincount(b.tx_src[done], weights=b.tx_size[done], minlength=n)
            got = (b.fate == OK) & (b.t_arrive <= t)
            received += np.bincount(b.dst[got], weights=b.size[got], minlength=n)
        return sent, received

    def events_after(self, t: float, nodes: np.ndarray) -> np.ndarray:
        """Per node of ``nodes`` (a mask over all nodes), the next end of one of
        its transmissions or delivery to it after ``t`` (``inf``: none)."""
        nxt = np.full(self.n_nodes, np.inf)
        for b in self.live:
            ends = nodes[b.tx_src] & (b.tx_end > t)
            np.minimum.at(nxt, b.tx_src[ends], b.tx_end[ends])
            arrives = nodes[b.dst] & (b.fate == OK) & (b.t_arrive > t)
            np.minimum.at(nxt, b.dst[arrives], b.t_arrive[arrives])
        return nxt

    def counts(self, now: float) -> MessageCounts:
        """Message counters at ``now`` (fates settled); each category on its own."""
        sent, delivered, dropped, in_flight = self._sent, self._delivered, self._dropped, 0
        for b in self.live:
            was_sent = (b.fate != CANCELLED) & (b.t_queue <= now)
            is_drop = (b.fate == DROPPED) | (b.fate == LOST)
            sent += int(was_sent.sum())
            delivered += int(((b.fate == OK) & (b.t_arrive <= now)).sum())
            dropped += int((is_drop & (b.drop_time <= now)).sum())
            in_flight += int(
                (
                    was_sent
                    & (((b.fate == OK) & (b.t_arrive > now)) | (is_drop & (b.drop_time > now)))
                ).sum()
            )
        return MessageCounts(sent, delivered, dropped, in_flight)

    def close(self, now: float) -> None:
        """Fold what is still in flight into the byte totals (every message
        sent by ``now``) and forget the live batches."""
        for b in self.live:
            self._add_bytes(
                b,
                (b.fate != CANCELLED) & (b.t_queue <= now),
                (b.fate == OK) & (b.t_arrive <= now),
            )
        self._live, self._arrivals = {}, []
