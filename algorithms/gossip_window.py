"""Windowed randomized gossip: the exchanges of
:class:`~algorithms.gossip.RandomizedGossip` processed a window of virtual time
at a time, as vectors, with the same events at the same times as the
per-exchange protocol (one SimPy process per exchange).

Why windows are exact
---------------------
A window ``[t0, t1)`` is no longer than the smallest link latency in effect, so
no message sent in it arrives in it: its events (clock ticks, asks arriving,
replies arriving) are all known at ``t0``. Each event touches one node's state
(its value, compute queue and uplink), so events of different nodes commute
and one node's events are applied in time order: rank by rank (rank ``r``: each
node's ``r``-th event of the window), each rank one host call. Windows also
end at each measurement and at the next event anything else has scheduled
(failures, churn, budget or link changes: whatever ``env.peek()`` shows), so
node and link state is constant within one, and a message's fate settled at
``t0`` is its fate when it arrives. What the per-exchange protocol does at a
time, done here ahead of the clock, is done at that time: jobs arrive at their
event times (``Simulation.compute(at=)``), messages are queued at theirs, the
loss draws are made per message in the order the messages were sent
(``Network.draw_losses``), and event times are computed with SimPy's own
arithmetic (``now + delay``, as ``Simulation.timeout_until`` rounds them).

Not windowed (the per-exchange protocol runs instead): a link latency of 0 at
the start (no window is short enough), and runs with batteries (the battery
watch reacts to work as it is committed). A latency event that sets a link's
latency to 0 during a windowed run is an error.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from netsim.errors import SimulationError
from netsim.kernel import Inbox, RemotePayload, Request
from netsim.messages import MessageBatch
from netsim.streams import Streams

if TYPE_CHECKING:
    from algorithms.gossip import RandomizedGossip
    from netsim.simulation import Simulation

_EMPTY_I = np.zeros(0, dtype=np.int64)


def can_window(sim: Simulation) -> bool:
    """Whether a run can be windowed (see the module's docstring)."""
    hooked = sim.network.on_send is not None or sim.devices.on_commit is not None
    return not hooked and len(sim.network.latency_s) > 0 and sim.network.latency_s.min() > 0


def wake_times(now: np.ndarray, t: np.ndarray) -> np.ndarray:
    """When ``Simulation.timeout_until(t)`` yielded at ``now`` fires, per element."""
    delay = np.maximum(0.0, t - now)
    when = now + delay
    short = when < t
    while short.any():
        delay[short] = np.nextafter(delay[short], np.inf)
        when = now + delay
        short = when < t
    return when


class _InFlight:
    """Messages on their way: when the exchange waiting for each wakes, its
    receiver and sender, and where it is (batch id, index in the batch)."""

    def __init__(self) -> None:
        self.time = np.zeros(0)
        self.dst = self.src = self.bid = self.idx = _EMPTY_I

    def add(self, time: np.ndarray, dst: np.ndarray, src: np.ndarray, bid: int) -> None:
        self.time = np.concatenate([self.time, time])
        self.dst = np.concatenate([self.dst, dst])
        self.src = np.concatenate([self.src, src])
        self.bid = np.concatenate([self.bid, np.full(len(time), bid, dtype=np.int64)])
        self.idx = np.concatenate([self.idx, np.arange(len(time))])

    def take(self, t1: float) -> dict[str, np.ndarray]:
        """Remove and return those waking before ``t1``."""
        now = self.time < t1
        out = {k: getattr(self, k)[now] for k in ("time", "dst", "src", "bid", "idx")}
        for k in ("time", "dst", "src", "bid", "idx"):
            setattr(self, k, getattr(self, k)[~now])
        return out


class _Clocks:
    """Every node's Poisson clock, its stream ``gossip-clock`` drawn as the
    per-exchange clock draws it (a delay, then a neighbour at a tick of a node
    that is up and has neighbours), a window at a time."""

    def __init__(self, sim: Simulation, rate: float) -> None:
        n = sim.n_nodes
        self.streams = Streams(sim.seed, "gossip-clock", np.arange(n))
        self.scale = 1.0 / rate
        self.degree = np.diff(sim.links.out_ptr).tolist()
        self.next = np.empty(n)
        start, nxt, scale = float(sim.now), self.next, self.scale

        def first(k: int, g: np.random.Generator) -> None:
            nxt[k] = start + g.exponential(scale)

        self.streams.draw(first)

    def ticks(self, t1: float, up: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ticks before ``t1`` that start an exchange: node, time, neighbour's rank."""
        nodes: list[int] = []
        times: list[float] = []
        picks: list[int] = []
        nxt, scale, degree, live = self.next, self.scale, self.degree, up.tolist()

        def tick(k: int, g: np.random.Generator) -> None:
            t, d = float(nxt[k]), degree[k]
            while t < t1:
                if d and live[k]:
                    nodes.append(k)
                    times.append(t)
                    picks.append(int(g.integers(d)))
                t = t + g.exponential(scale)
            nxt[k] = t

        self.streams.draw(tick, np.flatnonzero(nxt < t1))
        return np.array(nodes, dtype=np.int64), np.array(times), np.array(picks, dtype=np.int64)


class Windows:
    """The driver side of one windowed run."""

    def __init__(self, algo: RandomizedGossip, sim: Simulation) -> None:
        self.sim = sim
        self.clocks = _Clocks(sim, algo.rate)
        self.asks, self.replies = _InFlight(), _InFlight()
        self.batches: dict[int, MessageBatch] = {}
        self._next_bid = 0

    def until(self, end: float, measure: simpy.Event) -> Generator[Any, Any, None]:
        """Process windows up to ``end``, when ``measure`` fires."""
        sim, env = self.sim, self.sim.env
        while True:
            t0 = float(env.now)
            latency = float(sim.network.latency_s.min())
            if latency <= 0:
                raise SimulationError(
                    f"windowed gossip: a link latency became 0 at t={t0}; "
                    "run RandomizedGossip(window=False)"
                )
            t1 = min(end, t0 + latency, float(env.peek()))
            wake: simpy.Event
            if t1 <= t0:  # something else happens now: let it, then go on
                wake = env.timeout(0)
            elif t1 == end:
                self._window(t0, end)
                wake = measure
            else:
                delay = t1 - t0  # the wake-up lands at t0 + delay: not after t1
                while t0 + delay > t1:
                    delay = float(np.nextafter(delay, -np.inf))
                wake = env.timeout(delay)
                self._window(t0, t0 + delay)
            yield wake
            if wake is measure:
                return

    # ------------------------------------------------------------ one window
    def _window(self, t0: float, t1: float) -> None:
        sim = self.sim
        tick_node, tick_time, pick = self.clocks.ticks(t1, sim.network.node_up)
        links = sim.links
        tick_to = links.dst[links.out_links[links.out_ptr[tick_node] + pick]]
        asks, replies = self._arriving(self.asks, t1, t0), self._arriving(self.replies, t1, t0)
        counts = [len(tick_node), len(asks["dst"]), len(replies["dst"])]
        node = np.concatenate([tick_node, asks["dst"], replies["dst"]])
        time = np.concatenate([tick_time, asks["time"], replies["time"]])
        kind = np.repeat(np.arange(3), counts)
        where = np.concatenate([np.arange(c) for c in counts])
        order = np.lexsort((time, node))  # by node, then time: ranks within a node
        first = np.r_[True, node[order][1:] != node[order][:-1]]
        rank = np.arange(len(order)) - np.maximum.accumulate(
            np.where(first, np.arange(len(order)), 0)
        )
        sent: list[tuple[np.ndarray, MessageBatch]] = []
        for r in range(int(rank.max()) + 1 if len(rank) else 0):
            at = order[rank == r]
            k, w = kind[at], where[at]
            t, a, p = w[k == 0], w[k == 1], w[k == 2]
            sent += self._rank(
                (tick_node[t], tick_to[t], tick_time[t]),
                {key: v[a] for key, v in asks.items()},
                {key: v[p] for key, v in replies.items()},
            )
        if sent:  # loss draws in the order the messages were sent
            made = np.concatenate([when for when, _ in sent])
            which = np.concatenate([np.full(len(w), g) for g, (w, _) in enumerate(sent)])
            index = np.concatenate([np.arange(len(w)) for w, _ in sent])
            o = np.argsort(made, kind="stable")
            sim.network.draw_losses([b for _, b in sent], which[o], index[o])
        keep = set(np.concatenate([self.asks.bid, self.replies.bid]).tolist())
        self.batches = {b: batch for b, batch in self.batches.items() if b in keep}

    def _arriving(self, flight: _InFlight, t1: float, t0: float) -> dict[str, np.ndarray]:
        """Messages whose exchange wakes before ``t1`` and that are delivered."""
        got = flight.take(t1)
        ok = np.zeros(len(got["bid"]), dtype=bool)
        for b in np.unique(got["bid"]).tolist():
            mine = got["bid"] == b
            ok[mine] = self.sim.network.deliverable(self.batches[b], got["idx"][mine], t0)
        return {k: v[ok] for k, v in got.items()}

    def _rank(
        self,
        ticks: tuple[np.ndarray, np.ndarray, np.ndarray],
        asks: dict[str, np.ndarray],
        replies: dict[str, np.ndarray],
    ) -> list[tuple[np.ndarray, MessageBatch]]:
        """One event per node: ticks (read, ask), asks (respond, reply),
        replies (apply), as one host call; the messages sent, by send time."""
        sim = self.sim
        src, dst, t_tick = ticks
        requests: list[Request] = []
        at: list[np.ndarray | None] = []
        if len(src):
            requests.append(Request("read", src))
            at.append(t_tick)
        if len(asks["dst"]):
            requests.append(Request("respond", asks["dst"], inbox=self._inbox(asks)))
            at.append(asks["time"])
        if len(replies["dst"]):
            requests.append(Request("apply", replies["dst"], inbox=self._inbox(replies)))
            at.append(replies["time"])
        if not requests:
            return []
        done = sim.compute(requests, at)
        sent = []
        q = 0
        if len(src):
            ask = sim.unicast(
                src, dst, t_tick, done.nbytes(q, "payload"), done.payload(q, "payload"),
                draw_loss=False,
            )  # fmt: skip
            self.asks.add(wake_times(t_tick, ask.t_arrive), dst, src, self._keep(ask))
            sent.append((t_tick, ask))
            q += 1
        if len(asks["dst"]):
            j, i, t = asks["dst"], asks["src"], asks["time"]
            reply = sim.unicast(
                j, i, done.finish[q], done.nbytes(q, "payload"), done.payload(q, "payload"),
                draw_loss=False,
            )  # fmt: skip
            self.replies.add(wake_times(t, reply.t_arrive), i, j, self._keep(reply))
            sent.append((t, reply))
        return sent

    def _keep(self, batch: MessageBatch) -> int:
        bid = self._next_bid
        self.batches[bid] = batch
        self._next_bid += 1
        return bid

    def _inbox(self, msgs: dict[str, np.ndarray]) -> Inbox:
        """One message per receiver: its contents gathered from the batches
        they came in (left on the hosts when they are remote)."""
        bid, idx = msgs["bid"], msgs["idx"]
        k = len(bid)
        link, row = np.empty(k, dtype=np.int64), np.empty(k, dtype=np.int64)
        local: list[np.ndarray] = []
        remote: list[Any] = []
        offset = 0
        for b in np.unique(bid).tolist():
            mine = np.flatnonzero(bid == b)
            batch = self.batches[b]
            source = batch.payload
            link[mine] = batch.link[idx[mine]]
            if source.row_of is None:
                local.append(source.data[idx[mine]])
                row[mine] = offset + np.arange(len(mine))
                offset += len(mine)
            else:
                used, inverse = np.unique(source.row_of[idx[mine]], return_inverse=True)
                remote.extend(source.data[used].parts)
                row[mine] = offset + inverse
                offset += len(used)
        payload = RemotePayload(tuple(remote)) if remote else np.concatenate(local)
        return Inbox(np.arange(k + 1), msgs["src"], link, row, payload)
