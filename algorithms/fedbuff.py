"""Asynchronous federated learning with buffered aggregation (FedBuff; Nguyen
et al., "Federated learning with buffered asynchronous aggregation",
AISTATS 2022), on the same clock and network as :mod:`algorithms.fedavg`.

``concurrency`` clients train at any time. Each gets the current global model
(version ``v``), trains on its shard and sends back its *change*
``delta = trained - received``. The server adds
``delta / sqrt(1 + staleness)`` (staleness: versions published since the client
got its model) to a buffer. After ``buffer_size`` updates it applies
``global += server_lr * buffer / buffer_size``, publishes a new version, and
evaluates it. Whenever a client's update arrives or is lost, another live,
idle client is started. The run ends after ``rounds`` versions.

One host call per client start (training) and per arrival (buffering); models
and updates travel along the server's routing tree as in FedAvg.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import networkx as nx
import numpy as np
import pandas as pd

from actors.host import HostSetup, Kernel, KernelCall, Outputs, Request
from algorithms.base import Final
from algorithms.fedavg import (
    FedAvg,
    FederatedSetup,
    FedState,
    LearningConfig,
    accuracy_final,
    model_kernel,
)
from algorithms.models import torch_threads
from netsim import checks

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

    def _as_fedavg(self) -> FedAvg:
        """FedAvg's routing, data and host state serve FedBuff too."""
        return FedAvg(learning=self.learning, server=self.server, idle_wait_s=self.idle_wait_s)

    def validate(self, graph: nx.Graph, seed: int) -> None:
        self._as_fedavg().validate(graph, seed)

    def init_state(self, setup: HostSetup, rngs_: list[np.random.Generator]) -> FedState:
        return self._as_fedavg().init_state(setup, rngs_)

    def kernel(self, name: str) -> Kernel:
        return _KERNELS[name]

    def flops(self, request: Request) -> np.ndarray:
        return np.zeros(len(request.devices))  # charged by the protocol

    def protocol(self, sim: Simulation) -> Generator[Any, Any, None]:
        yield from _FedBuffRun(self, sim).run()

    def final(self, metrics: pd.DataFrame) -> Final:
        return accuracy_final(metrics, self.target_accuracy)


# ---------------------------------------------------------------- kernels
def _train_delta(state: FedState, call: KernelCall) -> tuple[FedState, Outputs]:
    cfg, start = state.cfg, np.asarray(call.params["model"], dtype=np.float32)
    out = np.empty((len(call.devices), len(start)), dtype=np.float32)
    with torch_threads(cfg.torch_threads):
        for i, d in enumerate(call.devices):
            trained = state.learner.train(
                int(d),
                start,
                epochs=cfg.local_epochs,
                batch_size=cfg.batch_size,
                lr=cfg.lr,
                optimizer=cfg.optimizer,
            )
            out[i] = trained - start
    return state, {"update": out}


def _apply(state: FedState, call: KernelCall) -> tuple[FedState, Outputs]:
    """``global += server_lr * sum_i w_i delta_i / buffer_size``, then evaluate."""
    assert state.global_vector is not None
    deltas = np.asarray(call.params["deltas"], dtype=np.float64)
    w = np.asarray(call.params["weights"], dtype=np.float64)
    step = call.params["server_lr"] * (w @ deltas) / len(w)
    state.global_vector = (state.global_vector + step).astype(np.float32)
    with torch_threads(state.cfg.torch_threads):
        accuracy, loss = state.learner.evaluate(state.global_vector)
    return state, {
        "model": state.global_vector[None].copy(),
        "accuracy": np.array([accuracy]),
        "loss": np.array([loss]),
    }


_KERNELS: dict[str, Kernel] = {
    "train": _train_delta,
    "apply": _apply,
    "model": model_kernel,
    "reset": lambda state, call: (state, {}),
}


# ---------------------------------------------------------------- the protocol
class _FedBuffRun:
    def __init__(self, algo: FedBuff, sim: Simulation) -> None:
        self.algo, self.sim = algo, sim
        self.tree = FederatedSetup(algo.learning, algo.server, sim)
        self.rng = sim.rng("fedbuff-select")
        self.version = 0
        self.busy: set[int] = set()
        self.buffer: list[tuple[np.ndarray, float, int]] = []  # delta, weight, staleness
        self.done = sim.env.event()
        self.lost = 0

    def run(self) -> Generator[Any, Any, None]:
        sim, server = self.sim, self.algo.server
        out = sim.compute([Request("model", np.array([server]))]).outputs(0)
        self.global_vector = out["model"][0]
        sim.record("accuracy", float(out["accuracy"][0]), 0)
        sim.record("loss", float(out["loss"][0]), 0)
        for _ in range(self.algo.concurrency):
            self._start_one()
        yield self.done

    def _start_one(self) -> None:
        """Start a live, idle client on the current model (or retry later)."""
        sim = self.sim
        if self.done.triggered:
            return
        idle = [c for c in self.tree.clients if c not in self.busy and sim.network.node_up[c]]
        if not idle or not sim.network.node_up[self.algo.server]:
            sim.env.process(self._retry())
            return
        c = int(self.rng.choice(idle))
        self.busy.add(c)
        train = sim.compute([Request("train", np.array([c]), params={"model": self.global_vector})])
        sim.env.process(self._client(c, self.version, train))

    def _retry(self) -> Generator[Any, Any, None]:
        yield self.sim.env.timeout(self.algo.idle_wait_s)
        self._start_one()

    def _client(self, c: int, version: int, train: Any) -> Generator[Any, Any, None]:
        sim, t = self.sim, self.tree
        path = t.path(c)
        ok = yield from self._relay(path[::-1])  # the model, down the tree
        if ok:
            start = sim.now
            seconds = sim.spend(np.array([c]), t.train_flops(c))[0]
            yield sim.timeout_until(start + seconds)
            net = sim.network
            ok = bool(net.node_up[c]) and net.node_down_since[c] < start
            if ok:
                ok = yield from self._relay(path)  # the update, up the tree
        self.busy.discard(c)
        if ok:
            self._receive(np.asarray(train.outputs(0)["update"][0]), float(t.samples[c]), version)
        else:
            self.lost += 1
        self._start_one()

    def _relay(self, path: list[int]) -> Generator[Any, Any, bool]:
        """Send one model-sized message hop by hop along ``path``."""
        sim = self.sim
        for u, v in itertools.pairwise(path):
            batch = sim.unicast(np.array([u]), np.array([v]), sim.now, self.tree.model_bytes)
            yield sim.timeout_until(float(batch.t_arrive[0]))
            if not len(sim.delivered(batch)):
                return False
        return True

    def _receive(self, delta: np.ndarray, samples: float, version: int) -> None:
        if self.done.triggered:
            return
        staleness = self.version - version
        self.buffer.append((delta, 1.0 / math.sqrt(1 + staleness), staleness))
        if len(self.buffer) < self.algo.buffer_size:
            return
        sim, server = self.sim, self.algo.server
        deltas, weights, stale = zip(*self.buffer, strict=True)
        self.buffer = []
        sim.spend(np.array([server]), 2.0 * len(deltas) * self.tree.model_bytes / 4)
        out = sim.compute(
            [
                Request(
                    "apply",
                    np.array([server]),
                    params={
                        "deltas": np.array(deltas),
                        "weights": np.array(weights),
                        "server_lr": self.algo.server_lr,
                    },
                )
            ]
        ).outputs(0)
        self.version += 1
        self.global_vector = out["model"][0]
        sim.record("accuracy", float(out["accuracy"][0]), self.version)
        sim.record("loss", float(out["loss"][0]), self.version)
        sim.record("staleness_mean", float(np.mean(stale)), self.version)
        sim.record("updates_lost", self.lost, self.version)
        sim.progress(self.version / self.algo.rounds)
        if self.version >= self.algo.rounds:
            self.done.succeed()
