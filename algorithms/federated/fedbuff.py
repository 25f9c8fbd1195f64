"""Asynchronous federated learning with buffered aggregation (FedBuff; Nguyen
et al., "Federated learning with buffered asynchronous aggregation",
AISTATS 2022), on the same clock, network and host program as FedAvg.

``concurrency`` clients train at any time. Each gets the current global model
of its prototype (version ``v``, encoded once per version on the server),
trains on its shard and sends back its *change* ``delta = trained - received``
(any codec may compress it). The server adds ``delta / sqrt(1 + staleness)``
(staleness: versions published since the client got its model) to a buffer.
After ``buffer_size`` updates it applies
``global += server_lr * buffer / buffer_size`` (a job on its compute queue,
redone if it fails meanwhile), publishes the new version when that job is
done, and evaluates it. Whenever a client's update arrives or is lost,
another live, idle client is started. The run ends after ``rounds`` versions.
Models and updates are relayed hop by hop along the server's routing tree.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import networkx as nx
import numpy as np
import pandas as pd

from algorithms.base import Final
from algorithms.federated.aggregation import staleness_weight
from algorithms.federated.codecs import Codec, Identity
from algorithms.federated.driver import Federation, Message, Update, check_federation
from algorithms.federated.program import FederatedProgram
from algorithms.learning import LearningConfig, accuracy_final
from netsim import checks
from netsim.errors import InputError
from netsim.kernel import Request

if TYPE_CHECKING:
    from netsim.simulation import Simulation


@dataclass(frozen=True)
class FedBuff:
    """Buffered asynchronous FL for ``rounds`` server versions."""

    learning: LearningConfig = field(default_factory=LearningConfig)
    rounds: int = 20
    concurrency: int = 10
    buffer_size: int = 5
    server_lr: float = 1.0
    server: int = 0
    target_accuracy: float = 0.9
    idle_wait_s: float = 1.0
    up: Codec = field(default_factory=Identity)
    down: Codec = field(default_factory=Identity)

    name: ClassVar[str] = "fedbuff"
    needs_connected: ClassVar[bool] = True
    node_attributes: ClassVar[tuple[str, ...]] = ()
    combination: ClassVar[None] = None

    def __post_init__(self) -> None:
        checks.positive_int("rounds", self.rounds)
        checks.positive_int("concurrency", self.concurrency)
        checks.positive_int("buffer_size", self.buffer_size)
        checks.number("server_lr", self.server_lr, low=0, low_open=True)
        checks.positive_int("server", self.server, minimum=0)
        checks.number("target_accuracy", self.target_accuracy, low=0, high=1)
        checks.number("idle_wait_s", self.idle_wait_s, low=0, low_open=True)
        if len(self.learning.specs) > 1:
            raise InputError(
                "fedbuff: one model prototype only (the learning config names several)"
            )
        if self.up.target == "weights" or self.down.target == "delta":
            raise InputError(
                "fedbuff: clients send changes and the server sends models; codec "
                f"{self.up.name if self.up.target == 'weights' else self.down.name} "
                "cannot carry them"
            )

    def check(self, graph: nx.Graph, seed: int) -> None:
        check_federation(graph, self.learning, self.server, seed)

    @property
    def program(self) -> FederatedProgram:
        return FederatedProgram(self.learning, self.server, self.up, self.down)

    def protocol(self, sim: Simulation) -> Generator[Any, Any, None]:
        yield from _FedBuffRun(self, sim).run()

    def final(self, metrics: pd.DataFrame) -> Final:
        return accuracy_final(metrics, self.target_accuracy)


class _FedBuffRun:
    def __init__(self, algo: FedBuff, sim: Simulation) -> None:
        self.algo, self.sim = algo, sim
        self.fed = Federation(sim, algo.learning, algo.server, algo.up, algo.down)
        self.rng = sim.rng("fedbuff-select")
        self.version = 0  # published
        self.submitted = 0  # versions whose aggregation has been queued
        self.busy: set[int] = set()
        self.buffer: dict[str, list[tuple[Update, float, int]]] = {}  # weight, staleness
        self.published: dict[tuple[str, int], tuple[Message, float]] = {}
        self.done = sim.env.event()
        self.lost = 0

    def run(self) -> Generator[Any, Any, None]:
        comp = self.fed.evaluate(0)
        self._record(0, comp)
        for _ in range(self.algo.concurrency):
            self._start_one()
        yield self.done

    def _start_one(self) -> None:
        """Start a live, idle client on the current model (or retry later)."""
        sim = self.sim
        if self.done.triggered:
            return
        idle = [c for c in self.fed.clients if c not in self.busy and sim.is_up(c)]
        if not idle or not sim.is_up(self.algo.server):
            sim.env.process(self._retry())
            return
        c = int(self.rng.choice(idle))
        self.busy.add(c)
        sim.env.process(self._client(c))

    def _retry(self) -> Generator[Any, Any, None]:
        yield self.sim.env.timeout(self.algo.idle_wait_s)
        self._start_one()

    def _model(self, p: str) -> tuple[Message, float]:
        """The current version of prototype ``p``'s model, encoded (once)."""
        key = (p, self.version)
        if key not in self.published:
            self.published = {k: v for k, v in self.published.items() if k[1] == self.version}
            self.published[key] = self.fed.publish(self.version, [p], "model")[p]
        return self.published[key]

    def _client(self, c: int) -> Generator[Any, Any, None]:
        sim, fed = self.sim, self.fed
        version, path = self.version, fed.route.path(c)
        message, ready = self._model(fed.prototype[c])
        batch = yield from fed.relay(path[::-1], message, t_queue=max(ready, sim.now))
        update = None
        if batch is not None:
            inbox = sim.inbox(batch, np.array([c]))
            update = yield from fed.train(c, inbox, "model", "model", "delta")
            if update is not None and (yield from fed.relay(path, update.message)) is None:
                update = None
        self.busy.discard(c)
        if update is not None:
            self._receive(update, version)
        else:
            self.lost += 1
        self._start_one()

    def _receive(self, update: Update, version: int) -> None:
        if self.done.triggered:
            return
        staleness = self.version - version
        p = update.message.prototype
        self.buffer.setdefault(p, []).append((update, staleness_weight(staleness), staleness))
        if len(self.buffer[p]) >= self.algo.buffer_size:
            self.sim.env.process(self._apply(p, self.buffer.pop(p)))

    def _apply(self, p: str, items: list[tuple[Update, float, int]]) -> Generator[Any, Any, None]:
        sim, fed = self.sim, self.fed
        self.submitted += 1
        target = self.submitted
        params = {
            "prototype": p,
            "base": target - 1,
            "version": target,
            "keep_from": self.version,  # the oldest a client may still be sent
            "weights": np.array([w for _, w, _ in items]),
            "server_lr": self.algo.server_lr,
            "size": fed.size[p],
        }
        inbox = fed.gather([u.message for u, _, _ in items])
        while True:
            yield sim.devices.when_up(fed.server)
            start = sim.now
            comp = sim.compute(
                [Request("apply", np.array([fed.server]), params=params, inbox=inbox)]
            )
            yield sim.timeout_until(float(comp.finish[0][0]))
            if not sim.devices.failed_since(fed.server, start):
                break
        self.version = target
        sim.record("staleness_mean", float(np.mean([s for _, _, s in items])), target)
        sim.record("updates_lost", self.lost, target)
        self._record(target, comp)
        sim.progress(min(1.0, target / self.algo.rounds))
        if target >= self.algo.rounds and not self.done.triggered:
            self.done.succeed()

    def _record(self, step: int, comp: Any) -> None:
        acc = [float(comp.outputs(i)["accuracy"][0]) for i in range(len(comp.finish))]
        loss = [float(comp.outputs(i)["loss"][0]) for i in range(len(comp.finish))]
        self.sim.record("accuracy", float(np.mean(acc)), step)
        self.sim.record("loss", float(np.mean(loss)), step)
