"""A deliberately naive model of netsim's network, message by message, written
from the rules in ``docs/network.md`` rather than from ``netsim.network``.

The property tests check that the vectorized network gives every message the
same arrival time, fate and drop time as this model. Elements are down on
half-open intervals ``[down, up)``. A message created at ``c`` is

- cancelled if its sender is down at ``c`` or goes down in ``(c, t_queue)``;
- dropped at the earliest of: a down time ``d > c`` of its sender, receiver or
  link with ``t_queue <= d < t_arrive``; ``t_queue`` if its receiver or link is
  down at ``t_queue``;
- delivered at ``t_arrive`` otherwise.

(Failure events at a time come before sends at that time, so an event at
``d == c`` happens before the message exists.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class RefMessage:
    src: int
    dst: int
    link: int
    created: float
    t_queue: float
    size: float
    t_arrive: float
    fate: str = "delivered"
    drop_time: float = math.inf


@dataclass
class RefNetwork:
    """``links[e] = (src, dst)``; ``rate[e]`` for unicast on link ``e``;
    ``broadcast_rate[u]``; ``latency[e]``. Call methods in time order, failure
    events before sends at equal times."""

    n: int
    links: list[tuple[int, int]]
    rate: list[float]
    broadcast_rate: list[float]
    latency: list[float]
    uplink_free: list[float] = field(init=False)
    down: dict[tuple[str, int], list[list[float]]] = field(default_factory=dict)
    messages: list[RefMessage] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.uplink_free = [0.0] * self.n

    def is_down(self, kind: str, i: int) -> bool:
        iv = self.down.get((kind, i), [])
        return bool(iv) and iv[-1][1] == math.inf

    def event(self, kind: str, i: int, t: float, down: bool) -> None:
        iv = self.down.setdefault((kind, i), [])
        if down and not self.is_down(kind, i):
            iv.append([t, math.inf])
            if kind == "node":
                self.uplink_free[i] = t  # the queue is lost
        elif not down and self.is_down(kind, i):
            iv[-1][1] = t
            if kind == "node":
                self.uplink_free[i] = max(self.uplink_free[i], t)

    def broadcast(
        self, now: float, senders: list[int], t_queue: list[float], size: list[float]
    ) -> None:
        for u, tq, s in zip(senders, t_queue, size, strict=True):
            out = [e for e, (a, _) in enumerate(self.links) if a == u]
            if not out:
                continue
            start = max(tq, self.uplink_free[u])
            end = start + s / self.broadcast_rate[u]
            self.uplink_free[u] = end
            for e in out:
                self.messages.append(
                    RefMessage(u, self.links[e][1], e, now, tq, s, end + self.latency[e])
                )

    def unicast(
        self, now: float, pairs: list[tuple[int, int]], t_queue: list[float], size: list[float]
    ) -> None:
        made = {}
        for i in sorted(range(len(pairs)), key=lambda i: (pairs[i][0], t_queue[i], i)):
            u, v = pairs[i]
            e = self.links.index((u, v))
            start = max(t_queue[i], self.uplink_free[u])
            end = start + size[i] / self.rate[e]
            self.uplink_free[u] = end
            made[i] = RefMessage(u, v, e, now, t_queue[i], size[i], end + self.latency[e])
        self.messages.extend(made[i] for i in range(len(pairs)))

    def settle(self) -> None:
        for m in self.messages:
            sender = self.down.get(("node", m.src), [])
            if any(d <= m.created < u or m.created < d < m.t_queue for d, u in sender):
                m.fate, m.drop_time = "cancelled", math.inf
                continue
            # a failure after the message was created, while it is in flight
            times = [d for d, _ in sender if m.created < d and m.t_queue <= d < m.t_arrive]
            for key in (("node", m.dst), ("link", m.link)):
                for d, u in self.down.get(key, []):
                    if m.created < d and m.t_queue <= d < m.t_arrive:
                        times.append(d)
                    if d <= m.t_queue < u:  # down when the message is queued
                        times.append(m.t_queue)
            m.fate, m.drop_time = ("dropped", min(times)) if times else ("delivered", math.inf)

    def counts(self, now: float) -> dict[str, int]:
        self.settle()
        sent = [m for m in self.messages if m.fate != "cancelled" and m.t_queue <= now]
        delivered = sum(1 for m in sent if m.fate == "delivered" and m.t_arrive <= now)
        dropped = sum(1 for m in sent if m.fate == "dropped" and m.drop_time <= now)
        in_flight = sum(
            1
            for m in sent
            if (m.fate == "delivered" and m.t_arrive > now)
            or (m.fate == "dropped" and m.drop_time > now)
        )
        return {
            "sent": len(sent),
            "delivered": delivered,
            "dropped": dropped,
            "in_flight": in_flight,
        }
