"""The network: directed links, FIFO uplinks, and messages in vectorized batches.

Transfer model
--------------
Every undirected edge of the topology is two directed *links*. A message from
``u`` to ``v`` is *queued* at ``t_queue`` on ``u``'s uplink, a FIFO server: its
transmission starts when the uplink is free, lasts ``size / rate`` and then the
message propagates for the link's ``latency_s``::

    start = max(t_queue, uplink free)   end = start + size / rate
    t_arrive = end + latency_s

- unicast: ``rate = min(uplink_Bps[u], bandwidth_Bps[u->v], downlink_Bps[v])``;
  each message is its own transmission.
- broadcast: one transmission heard by every neighbour (as on a wireless
  medium), at the rate the slowest of them can take:
  ``rate = min(uplink_Bps[u], min over u's links of min(bandwidth_Bps, downlink_Bps[v]))``.

Downlinks cap rates but are not queues. Each message on a link with loss
probability ``p`` is lost with probability ``p`` (independently).

Failures
--------
A message is *in flight* from ``t_queue`` until ``t_arrive``. An element (node
or link) is down on half-open intervals ``[down, up)``; failure events at a
time apply before anything else the protocol does at that time. A message
created at time ``c`` is

- *cancelled* (never sent, not counted as sent) if its sender is down at ``c``
  or goes down strictly between ``c`` and ``t_queue`` (the computation that
  would have produced it was interrupted);
- *dropped* if, after it was created, its sender, its receiver or its link
  goes down while it is in flight (at ``t`` with ``t_queue <= t < t_arrive``), or
  if its receiver or link is down at ``t_queue``; the drop time is the failure
  time, or ``t_queue``;
- *lost* (counted as dropped at ``t_arrive``) by the link's loss draw;
- *delivered* at ``t_arrive`` otherwise.

So at any time ``sent = delivered + dropped + in flight``. Fates are decided
eagerly at failure events and lazily (``_settle``) when counters or deliveries
are read, never by looking into the future.

Costs: a batch of M messages costs O(M) numpy work; a failure event costs
O(messages in live batches).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from netsim.content_cache import frozen, read_only
from netsim.link_table import LinkTable
from netsim.message_ledger import MessageLedger
from netsim.messages import (
    CANCELLED,
    DROPPED,
    LOST,
    OK,
    MessageBatch,
    MessageCounts,
    fifo_ranks,
)


class Network:
    """Link state, uplink queues, messages in flight and their accounting."""

    def __init__(
        self,
        links: LinkTable,
        *,
        latency_s: np.ndarray,
        bandwidth_Bps: np.ndarray,
        loss: np.ndarray,
        uplink_Bps: np.ndarray,
        downlink_Bps: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        n, e = links.n_nodes, len(links)
        self.links = links
        self.latency_s = np.array(latency_s, dtype=float)
        self.bandwidth_Bps = np.array(bandwidth_Bps, dtype=float)
        self.loss = np.array(loss, dtype=float)
        self.uplink_Bps = np.array(uplink_Bps, dtype=float)
        self.downlink_Bps = np.array(downlink_Bps, dtype=float)
        self._rng = rng
        self.node_up = np.ones(n, dtype=bool)
        self.node_down_since = np.full(n, -np.inf)
        self.link_up = np.ones(e, dtype=bool)
        self.link_down_since = np.full(e, -np.inf)
        self.uplink_free = np.zeros(n)
        self.ledger = MessageLedger(n, e)  # live batches, totals of retired ones
        self._down = 0  # nodes and links currently down
        self.on_send: Callable[[np.ndarray], None] | None = None  # the battery watch's hook
        self._update_rates()
        # shared by the batches of every link; frozen, so that caches know them
        # by identity (netsim.content_cache)
        self._all_links, self._all_links_src, self._all_links_dst = read_only(
            np.arange(e), links.src, links.dst
        )
        self._every_node: np.ndarray | None = None  # frozen senders known to be every node
        self._has_out_links = np.diff(links.out_ptr) > 0
        # the parameters as the scenario gave them, before any event changes them
        self.nominal_latency_s = self.latency_s.copy()
        self.nominal_broadcast_rate = self._broadcast_rate.copy()
        self.nominal_link_rate = self._link_rate.copy()

    # ---------------------------------------------------------------- rates
    def _update_rates(self) -> None:
        src, dst = self.links.src, self.links.dst
        self._link_rate = np.minimum(
            np.minimum(self.uplink_Bps[src], self.bandwidth_Bps), self.downlink_Bps[dst]
        )
        rate = self.uplink_Bps.copy()
        np.minimum.at(rate, src, self._link_rate)
        self._broadcast_rate = rate

    def set_link_parameter(self, link: np.ndarray, name: str, value: float) -> None:
        """Change ``bandwidth_Bps`` or ``latency_s`` of links; affects later sends only."""
        if name == "bandwidth_Bps":
            self.bandwidth_Bps[link] = value
            self._update_rates()
        elif name == "latency_s":
            self.latency_s[link] = value
        else:
            raise ValueError(f"unknown link parameter {name!r}")

    # ---------------------------------------------------------------- sending
    def broadcast(
        self, now: float, senders: np.ndarray, t_queue: np.ndarray, size: np.ndarray | float
    ) -> MessageBatch:
        """Each of ``senders`` (distinct) broadcasts one message of ``size`` bytes,
        queued at ``t_queue`` (``>= now``), to all its out-neighbours."""
        senders = np.asarray(senders, dtype=np.int64)
        t_queue = np.broadcast_to(np.asarray(t_queue, dtype=float), senders.shape)
        size = np.broadcast_to(np.asarray(size, dtype=float), senders.shape)
        n = self.links.n_nodes
        every = len(senders) == n and (
            senders is self._every_node or bool(np.all(senders == np.arange(n)))
        )
        if every and frozen(senders):  # (the nodes that are up, round after round)
            self._every_node = senders
        if every:  # every node sends (no failures): every link, no gathers
            link, msg_sender = self._all_links, self._all_links_src
            has_links = self._has_out_links
        else:
            position = np.full(n, -1, dtype=np.int64)
            position[senders] = np.arange(len(senders))
            if not np.array_equal(position[senders], np.arange(len(senders))):
                raise ValueError("broadcast: senders must be distinct")
            link = np.flatnonzero(position[self.links.src] >= 0)  # sorted by (dst, src)
            msg_sender = position[self.links.src[link]]
            has_links = np.bincount(msg_sender, minlength=len(senders)) > 0
        start = np.maximum(t_queue, self.uplink_free[senders])
        end = start + size / self._broadcast_rate[senders]
        self.uplink_free[senders[has_links]] = end[has_links]
        return self._batch(
            now,
            every,
            link=link,
            tx=msg_sender,
            size=size[msg_sender],
            t_queue=t_queue[msg_sender],
            t_arrive=end[msg_sender] + (self.latency_s if every else self.latency_s[link]),
            tx_src=senders,
            tx_size=np.where(has_links, size, 0.0),
            tx_start=start,
            tx_end=end,
        )

    def unicast(
        self,
        now: float,
        src: np.ndarray,
        dst: np.ndarray,
        t_queue: np.ndarray | float,
        size: np.ndarray | float,
        *,
        draw_loss: bool = True,
    ) -> MessageBatch:
        """Messages ``src[i] -> dst[i]``, each its own transmission; messages of one
        sender leave its uplink in order of ``t_queue`` (ties: in the given order).

        ``draw_loss=False``: no loss draws now; the caller makes them with
        :meth:`draw_losses` before anything reads the batch's fates."""
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        t_queue = np.broadcast_to(np.asarray(t_queue, dtype=float), src.shape).copy()
        size = np.broadcast_to(np.asarray(size, dtype=float), src.shape).copy()
        link = self.links.index(src, dst)
        duration = size / self._link_rate[link]
        begin, end = np.empty(len(src)), np.empty(len(src))
        for idx in fifo_ranks(src, t_queue):
            s = src[idx]
            start = np.maximum(t_queue[idx], self.uplink_free[s])
            begin[idx] = start
            end[idx] = start + duration[idx]
            self.uplink_free[s] = end[idx]
        return self._batch(
            now,
            draw_loss=draw_loss,
            link=link,
            tx=np.arange(len(src)),
            size=size,
            t_queue=t_queue,
            t_arrive=end + self.latency_s[link],
            tx_src=src,
            tx_size=size,
            tx_start=begin,
            tx_end=end,
        )

    def _batch(
        self, now: float, every: bool = False, draw_loss: bool = True, **arrays: np.ndarray
    ) -> MessageBatch:
        """A batch of messages on ``arrays["link"]`` (``every``: one on each link, in order)."""
        link = arrays["link"]
        m = len(link)
        fate = np.zeros(m, dtype=np.int8)
        drop_time = np.full(m, np.inf)
        src = self._all_links_src if every else self.links.src[link]
        dst = self._all_links_dst if every else self.links.dst[link]
        loss = self.loss if every else self.loss[link]
        if self._down:  # (nothing is down: nothing to cancel)
            fate[~self.node_up[src]] = CANCELLED  # a down node sends nothing
        lossy = loss > 0
        if draw_loss and lossy.any():
            lost = lossy & (self._rng.random(m) < loss) & (fate == OK)
            fate[lost] = LOST
            drop_time[lost] = arrays["t_arrive"][lost]
        batch = MessageBatch(src=src, dst=dst, fate=fate, drop_time=drop_time, **arrays)
        if np.any(batch.t_queue < now):
            raise ValueError("messages cannot be queued in the past")
        self.ledger.add(batch)
        if self.on_send is not None and m:
            self.on_send(np.concatenate([batch.src, batch.dst]))
        return batch

    def draw_losses(
        self, batches: list[MessageBatch], which: np.ndarray, index: np.ndarray
    ) -> None:
        """The loss draws of messages sent with ``draw_loss=False``: message
        ``index[k]`` of ``batches[which[k]]``, in the order ``k``, one draw from
        the network's stream per message on a lossy link, as if each had been
        sent alone in that order (and nothing settled since it was sent)."""
        p = np.zeros(len(which))
        for g, b in enumerate(batches):
            mine = which == g
            p[mine] = self.loss[b.link[index[mine]]]
        lossy = p > 0
        lost = np.zeros(len(which), dtype=bool)
        lost[lossy] = self._rng.random(int(lossy.sum())) < p[lossy]
        for g, b in enumerate(batches):
            i = index[lost & (which == g)]
            i = i[b.fate[i] == OK]
            b.fate[i] = LOST
            b.drop_time[i] = b.t_arrive[i]

    # ---------------------------------------------------------------- receiving
    def deliverable(self, batch: MessageBatch, index: np.ndarray, now: float) -> np.ndarray:
        """Whether messages ``index`` of ``batch`` are on course for delivery as
        far as is known at ``now`` (their fate once settled at ``now``): for one
        that arrives before the next failure event, whether it is delivered."""
        self._settle(now)
        return batch.fate[index] == OK

    def delivered(self, batch: MessageBatch, now: float) -> np.ndarray:
        """Indices of ``batch``'s messages delivered by ``now``, in batch order."""
        self._settle(now)
        return np.flatnonzero((batch.fate == OK) & (batch.t_arrive <= now))

    def in_flight(self, batch: MessageBatch, now: float) -> np.ndarray:
        """Indices of ``batch``'s messages sent by ``now`` and still on their way."""
        self._settle(now)
        alive = (batch.fate == OK) | (batch.fate == LOST)
        return np.flatnonzero(alive & (batch.t_queue <= now) & (batch.t_arrive > now))

    # ---------------------------------------------------------------- failures
    def node_down(self, node: int, t: float) -> bool:
        """Take ``node`` down at ``t``; ``False`` if it was already down."""
        self._settle(t, strict=True)
        if not self.node_up[node]:
            return False
        self.node_up[node] = False
        self.node_down_since[node] = t
        self.uplink_free[node] = t  # its queue is lost
        self._down += 1
        for b in self.ledger.live:
            alive = (b.fate == OK) | (b.fate == LOST)
            mine = b.src == node
            cancel = alive & mine & (b.t_queue > t)
            b.fate[cancel] = CANCELLED
            b.drop_time[cancel] = np.inf
            self._drop_in_flight(b, alive & (mine | (b.dst == node)), t)
        return True

    def node_up_at(self, node: int, t: float) -> bool:
        """Bring ``node`` back at ``t``; ``False`` if it was already up."""
        self._settle(t, strict=True)
        if self.node_up[node]:
            return False
        self.node_up[node] = True
        self.uplink_free[node] = max(self.uplink_free[node], t)
        self._down -= 1
        return True

    def link_down(self, link: int, t: float) -> bool:
        self._settle(t, strict=True)
        if not self.link_up[link]:
            return False
        self.link_up[link] = False
        self.link_down_since[link] = t
        self._down += 1
        for b in self.ledger.live:
            alive = (b.fate == OK) | (b.fate == LOST)
            self._drop_in_flight(b, alive & (b.link == link), t)
        return True

    def link_up_at(self, link: int, t: float) -> bool:
        self._settle(t, strict=True)
        if self.link_up[link]:
            return False
        self.link_up[link] = True
        self._down -= 1
        return True

    @staticmethod
    def _drop_in_flight(b: MessageBatch, candidates: np.ndarray, t: float) -> None:
        hit = candidates & (b.t_queue <= t) & (t < b.t_arrive)
        b.fate[hit] = DROPPED
        b.drop_time[hit] = t

    def _settle(self, now: float, strict: bool = False) -> None:
        """Drop messages queued (by ``now``) to a receiver or over a link that has
        been down since before their ``t_queue``; retire finished batches.

        ``strict``: only messages queued strictly before ``now``. Failure
        handlers settle this way: other failure events at ``now`` may still
        change who is up at ``now`` (down intervals are half-open, ``[down, up)``)."""
        if self._down:
            for b in self.ledger.live:
                queued = b.t_queue < now if strict else b.t_queue <= now
                alive = ((b.fate == OK) | (b.fate == LOST)) & queued
                if not alive.any():
                    continue
                bad = (~self.node_up[b.dst] & (b.t_queue >= self.node_down_since[b.dst])) | (
                    ~self.link_up[b.link] & (b.t_queue >= self.link_down_since[b.link])
                )
                hit = alive & bad
                b.fate[hit] = DROPPED
                b.drop_time[hit] = b.t_queue[hit]
        self.ledger.retire(now)

    # ---------------------------------------------------------------- totals
    @property
    def link_bytes(self) -> np.ndarray:
        return self.ledger.link_bytes

    @property
    def node_bytes_sent(self) -> np.ndarray:
        return self.ledger.node_bytes_sent

    @property
    def node_bytes_received(self) -> np.ndarray:
        return self.ledger.node_bytes_received

    def node_bytes_by(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Bytes each node finished transmitting by ``t``, and bytes delivered
        to it by ``t`` (messages queued at ``t`` itself are not settled yet)."""
        self._settle(t, strict=True)
        return self.ledger.node_bytes_by(t)

    def events_after(self, t: float, nodes: np.ndarray) -> np.ndarray:
        """Per node of ``nodes`` (a mask over all nodes), the next end of one of
        its transmissions or delivery to it after ``t`` (``inf``: none)."""
        return self.ledger.events_after(t, nodes)

    def counts(self, now: float) -> MessageCounts:
        """Message counters at ``now``; each category is counted on its own."""
        self._settle(now)
        return self.ledger.counts(now)

    def finish(self, now: float) -> MessageCounts:
        """Final counters; byte totals then include every message sent by ``now``."""
        counts = self.counts(now)
        self.ledger.close(now)
        return counts
