"""The server-round template: synchronous federated rounds on the clock.

A round ``r``:

1. when the server is up, it selects ``ceil(participation * clients)`` live
   clients (times ``1 + over_selection`` with a deadline), seeded;
2. it encodes the global model of each prototype in use (a job on its
   compute queue) and sends it to the selected clients: unicasts queued on
   its FIFO uplink, relayed by inner nodes (store and forward);
3. each client decodes and trains from the moment the model arrives (a job
   on its queue: ``FLOPs / compute_flops``), encodes its update (another job,
   of the FLOPs the encoder reports) and sends it back;
4. with edge aggregation, inner nodes average what their clients sent
   (weighted by examples) and forward one message per prototype;
5. the round closes when every selected client is accounted for (sent, or
   lost to a failure), or, with ``deadline_s``, at the deadline or as soon as
   the target number of updates arrived. Updates that arrive later are
   *late* and unused; clients that fail, or whose messages are dropped, are
   *lost*;
6. the server aggregates (a job on its queue; redone if it fails meanwhile)
   and the next round starts when that is done.

Hooks: :class:`Schedule`, what kind of message each direction carries in a
round (FedCode sends codebooks alone in some rounds), and :class:`ServerStep`,
what the server makes of the updates (FedAvg averages each prototype's;
FedDF and TAKFL also transfer knowledge between prototypes). Clients are
selected per prototype, ``ceil(participation * its clients)`` of each.
Evaluation of the global model on the held-out split is measurement and
costs no simulated time.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from algorithms.federated.driver import Federation, Message, Update
from algorithms.federated.hooks import (
    Averaging,
    RoundRules,
    Schedule,
    Scores,
    ServerStep,
    per_request_scores,
)
from netsim.kernel import Request

if TYPE_CHECKING:
    from netsim.simulation import Simulation


@dataclass(eq=False)
class _Round:
    number: int
    start: float
    selected: list[int]
    close_at: int  # updates that close the round early
    closed: simpy.Event
    kind_down: str
    kind_up: str
    status: dict[int, str] = field(default_factory=dict)  # client -> used / lost
    arrival: dict[int, float] = field(default_factory=dict)  # its update at the server
    received: dict[int, float] = field(default_factory=dict)  # the model at the client
    sent: dict[int, float] = field(default_factory=dict)  # its update leaving
    used: list[Update] = field(default_factory=list)
    waiting: dict[int, set[int]] = field(default_factory=dict)  # inner node -> clients due
    buffers: dict[int, list[Update]] = field(default_factory=dict)
    close_time: float = math.nan
    bytes_down: dict[str, float] = field(default_factory=dict)  # by prototype
    bytes_up: dict[str, float] = field(default_factory=dict)

    def count(self, direction: dict[str, float], prototype: str, nbytes: float) -> None:
        direction[prototype] = direction.get(prototype, 0.0) + nbytes

    @property
    def is_closed(self) -> bool:
        return bool(self.closed.triggered)


class SyncRounds:
    """Driver-side state of one synchronous run (see the module docstring)."""

    def __init__(
        self,
        sim: Simulation,
        fed: Federation,
        rules: RoundRules,
        schedule: Schedule | None = None,
        step: ServerStep | None = None,
    ) -> None:
        self.sim, self.fed, self.rules = sim, fed, rules
        self.schedule = schedule or Schedule()
        self.step: ServerStep = step or Averaging()
        self.server = fed.server
        self.rng = sim.rng("fedavg-select")
        self.members = {
            p: [c for c in fed.clients if fed.prototype[c] == p] for p in fed.prototypes
        }
        self.target = {
            p: max(1, math.ceil(rules.participation * len(m))) for p, m in self.members.items()
        }
        self.version = 0

    def run(self) -> Generator[Any, Any, None]:
        self.fed.check_deadline(self.rules.deadline_s)
        self._record_accuracy(0, per_request_scores(self.fed, self.fed.evaluate(0)))
        for r in range(1, self.rules.rounds + 1):
            yield from self._round(r)
            self.sim.progress(r / self.rules.rounds)

    # ------------------------------------------------------------ rounds
    def _round(self, r: int) -> Generator[Any, Any, None]:
        sim, rules, fed = self.sim, self.rules, self.fed
        yield sim.devices.when_up(self.server)
        selected, close_at = self._select()
        if not selected:  # nobody to train: the model does not change
            yield sim.env.timeout(rules.idle_wait_s)
            for name in ("selected", "updates_used", "updates_late", "updates_lost"):
                sim.record(name, 0, r)
            return
        R = _Round(
            r,
            sim.now,
            selected,
            close_at,
            sim.env.event(),
            self.schedule.down(r),
            self.schedule.up(r),
        )
        for node, below in fed.route.below.items():
            due = set(below) & set(selected)
            if due:
                R.waiting[node] = due
        protos = sorted({fed.prototype[c] for c in selected})
        for p, (message, ready) in fed.publish(self.version, protos, R.kind_down).items():
            group = [c for c in selected if fed.prototype[c] == p]
            self._down(self.server, group, R, message, ready)
        if rules.deadline_s is not None:
            sim.env.process(self._deadline(R))
        yield R.closed
        yield from self._aggregate(R)

    def _select(self) -> tuple[list[int], int]:
        """Live clients of each prototype, seeded; and how many updates close
        the round early (with a deadline)."""
        sim, rules = self.sim, self.rules
        selected, close_at = [], 0
        for p, members in self.members.items():
            live = [c for c in members if sim.is_up(c)]
            target = self.target[p]
            want = math.ceil(target * (1 + rules.over_selection)) if rules.deadline_s else target
            count = min(len(live), want)
            if count:
                selected += [int(c) for c in self.rng.choice(live, count, replace=False)]
                close_at += min(target, count)
        return sorted(selected), close_at

    def _aggregate(self, R: _Round) -> Generator[Any, Any, None]:
        """The next version of every prototype's model, from the updates used."""
        sim = self.sim
        while True:
            yield sim.devices.when_up(self.server)  # it failed mid-round: aggregate when back
            start = sim.now
            comp = sim.compute(
                self.step.requests(
                    self.fed, R.used, self.version, self.version + 1, R.kind_up, self.rules.send
                )
            )
            yield sim.timeout_until(float(comp.finish[-1][0]))
            if not sim.devices.failed_since(self.server, start):
                break
        self.version += 1
        self._record_round(R)
        sim.metrics.add(sim.now, R.number, -1, "server_s", sim.now - R.close_time)
        self._record_accuracy(R.number, self.step.scores(self.fed, comp))
        self.step.record(sim, R.number, self.fed, comp)

    # ------------------------------------------------------------ metrics
    def _record_accuracy(self, step: int, scores: Scores) -> None:
        """``accuracy``/``loss``: the mean over prototypes (and each one's, when
        there are several), at the time the models exist."""
        sim = self.sim
        sim.record("accuracy", float(np.mean([a for a, _ in scores.values()])), step)
        sim.record("loss", float(np.mean([loss for _, loss in scores.values()])), step)
        if len(scores) > 1:
            for p, (a, _) in scores.items():
                sim.record(f"accuracy_{p}", a, step)

    def _record_round(self, R: _Round) -> None:
        add, r, t = self.sim.metrics.add, R.number, R.close_time
        used = [c for c, s in R.status.items() if s == "used"]
        lost = [c for c, s in R.status.items() if s == "lost"]
        late = [c for c in R.selected if c not in R.status]
        for name, value in (
            ("round_duration_s", t - R.start),
            ("selected", len(R.selected)),
            ("updates_used", len(used)),
            ("updates_late", len(late)),
            ("updates_lost", len(lost)),
            ("bytes_down", sum(R.bytes_down.values())),
            ("bytes_up", sum(R.bytes_up.values())),
        ):
            add(t, r, -1, name, value)
        if len(self.fed.prototypes) > 1:
            for p in self.fed.prototypes:
                add(t, r, -1, f"bytes_down_{p}", R.bytes_down.get(p, 0.0))
                add(t, r, -1, f"bytes_up_{p}", R.bytes_up.get(p, 0.0))
        for c in R.selected:
            add(t, r, c, "update_used", 1.0 if c in used else 0.0)
            if c in R.arrival:  # where its round went: download, compute, upload
                add(t, r, c, "update_arrival_s", R.arrival[c] - R.start)
                add(t, r, c, "download_s", R.received[c] - R.start)
                add(t, r, c, "train_s", R.sent[c] - R.received[c])
                add(t, r, c, "upload_s", R.arrival[c] - R.sent[c])

    # ------------------------------------------------------------ messages
    def _down(
        self, node: int, clients: list[int], R: _Round, message: Message, t_queue: float
    ) -> None:
        """``node`` has the model (from ``t_queue``): send it on towards ``clients``."""
        sim = self.sim
        hops = self.fed.route.next_hops(node, clients)
        kids = list(hops)
        batch = sim.unicast(
            np.full(len(kids), node),
            np.array(kids),
            t_queue,
            message.nbytes,
            message.source.take([0] * len(kids)),
        )
        R.count(R.bytes_down, message.prototype, message.nbytes * len(kids))
        for j, kid in enumerate(kids):
            sim.env.process(self._hop_down(batch, j, kid, hops[kid], R, message))

    def _hop_down(
        self, batch: Any, j: int, kid: int, clients: list[int], R: _Round, message: Message
    ) -> Generator[Any, Any, None]:
        sim = self.sim
        yield sim.timeout_until(float(batch.t_arrive[j]))
        if j not in set(sim.delivered(batch).tolist()):
            self._lose(R, clients)
        elif kid in clients:  # a selected client: it trains
            R.received[kid] = sim.now
            inbox = sim.inbox(batch, np.array([kid]))
            update = yield from self.fed.train(kid, inbox, R.kind_down, R.kind_up, self.rules.send)
            if update is None:
                self._lose(R, [kid])
            else:
                R.sent[kid] = sim.now
                yield from self._up(kid, update, R)
        else:
            self._down(kid, clients, R, message, sim.now)

    def _up(self, node: int, update: Update, R: _Round) -> Generator[Any, Any, None]:
        sim, fed = self.sim, self.fed
        parent = int(fed.route.parent[node])
        batch = fed.hop(node, parent, update.message)
        R.count(R.bytes_up, update.message.prototype, update.message.nbytes)
        yield sim.timeout_until(float(batch.t_arrive[0]))
        if not len(sim.delivered(batch)):
            self._lose(R, update.clients)
        elif parent == self.server:
            self._arrive(R, update)
        elif not self.rules.edge_aggregation:
            yield from self._up(parent, update, R)
        else:
            R.buffers.setdefault(parent, []).append(update)
            R.waiting[parent] -= set(update.clients)
            self._maybe_forward(parent, R)

    def _maybe_forward(self, node: int, R: _Round) -> None:
        if R.waiting.get(node) or not R.buffers.get(node):
            return
        R.waiting.pop(node, None)
        self.sim.env.process(self._forward(node, R.buffers.pop(node), R))

    def _forward(self, node: int, updates: list[Update], R: _Round) -> Generator[Any, Any, None]:
        """An inner node averages its clients' updates (per prototype) and
        sends one message up for each."""
        sim, fed = self.sim, self.fed
        for p in sorted({u.message.prototype for u in updates}):
            group = [u for u in updates if u.message.prototype == p]
            clients = [c for u in group for c in u.clients]
            if not sim.is_up(node):
                self._lose(R, clients)
                continue
            start = sim.now
            params = {"weights": np.array([u.weight for u in group]), "size": fed.size[p]}
            inbox = fed.gather([u.message for u in group])
            comp = sim.compute([Request("partial", np.array([node]), params=params, inbox=inbox)])
            yield sim.timeout_until(float(comp.finish[0][0]))
            if not sim.devices.failed_since(node, start):
                done = float(sim.work(node, comp.reported_flops(0))[0])
                yield sim.timeout_until(done)
            if sim.devices.failed_since(node, start):
                self._lose(R, clients)
                continue
            message = Message(comp.payload(0, "update"), int(comp.nbytes(0, "update")[0]), p)
            merged = Update(clients, float(sum(u.weight for u in group)), message)
            sim.env.process(self._up(node, merged, R))

    # ------------------------------------------------------------ bookkeeping
    def _arrive(self, R: _Round, update: Update) -> None:
        if R.is_closed:
            return  # late: unused
        R.used.append(update)
        for c in update.clients:
            R.status[c] = "used"
            R.arrival[c] = self.sim.now
        self._maybe_close(R)

    def _lose(self, R: _Round, clients: list[int]) -> None:
        for c in clients:
            if c not in R.status and not R.is_closed:
                R.status[c] = "lost"
        for node, due in list(R.waiting.items()):
            due -= set(clients)
            self._maybe_forward(node, R)
        self._maybe_close(R)

    def _maybe_close(self, R: _Round) -> None:
        if R.is_closed:
            return
        used = sum(1 for s in R.status.values() if s == "used")
        deadline_mode = self.rules.deadline_s is not None
        if len(R.status) == len(R.selected) or (deadline_mode and used >= R.close_at):
            R.close_time = self.sim.now
            R.closed.succeed()

    def _deadline(self, R: _Round) -> Generator[Any, Any, None]:
        assert self.rules.deadline_s is not None
        yield self.sim.timeout_until(R.start + self.rules.deadline_s)
        if not R.is_closed:
            R.close_time = self.sim.now
            R.closed.succeed()
