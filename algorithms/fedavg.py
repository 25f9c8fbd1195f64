"""Federated averaging (McMahan et al., "Communication-efficient learning of
deep networks from decentralized data", AISTATS 2017) on simulated devices.

The server is a node of the topology; models and updates travel along a BFS
tree rooted at it (:mod:`algorithms.tree`): one hop on a star, through the
edge aggregators on the two-tier edge-cloud hierarchy. Clients are the
tree's leaves. A round:

1. the server selects ``ceil(participation * clients)`` live clients (times
   ``1 + over_selection`` with a deadline), seeded;
2. it sends them the model: unicasts queued on its FIFO uplink, relayed by
   inner nodes (store and forward);
3. each client trains ``local_epochs`` on its shard from the moment the model
   arrives, for ``FLOPs / compute_flops`` seconds (FLOPs counted from the
   model, per example), and sends its parameters back;
4. inner nodes average what their clients sent (weighted by examples) and
   forward one message; the server averages what it received, weighted by
   examples.

The round closes when every selected client is accounted for (sent, or lost
to a failure), or, with ``deadline_s``, at the deadline or as soon as the
target number of updates arrived. Updates that arrive later are *late* and
unused; clients that fail, or whose messages are dropped, are *lost*. Each
selected client ends a round used, late or lost (metrics ``updates_*``).

Training runs on the clients' hosts, one host call per round for all selected
clients; the virtual clock decides when each result counts. Evaluation of the
global model on the held-out split is measurement and costs no simulated time.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import networkx as nx
import numpy as np
import pandas as pd
import simpy

from actors.host import HostSetup, Kernel, KernelCall, Outputs, Request
from algorithms import datasets, models
from algorithms.base import Final, network_rows
from algorithms.learning import OPTIMIZERS, Learner
from algorithms.models import torch_threads
from algorithms.tree import bfs_parents, leaves
from netsim import checks
from netsim.errors import InputError
from netsim.network import LinkTable

if TYPE_CHECKING:
    from netsim.simulation import Simulation


@dataclass(frozen=True)
class LearningConfig:
    """What a device trains, and how (shared by FedAvg, FedBuff and D-PSGD)."""

    data: datasets.DataSpec = field(default_factory=datasets.DataSpec)
    model: str = "mlp"
    hidden: int = 32
    local_epochs: int = 1
    batch_size: int = 16
    lr: float = 0.1
    optimizer: Literal["sgd", "adam"] = "sgd"
    torch_threads: int = 1

    def __post_init__(self) -> None:
        checks.choice("model", self.model, models.MODELS)
        checks.positive_int("hidden", self.hidden)
        checks.positive_int("local_epochs", self.local_epochs)
        checks.positive_int("batch_size", self.batch_size)
        checks.number("lr", self.lr, low=0, low_open=True)
        checks.choice("optimizer", self.optimizer, OPTIMIZERS)
        checks.positive_int("torch_threads", self.torch_threads)

    def check_fit(self, split: datasets.Split, seed: int) -> Any:
        """The model for this data (InputError when its shape does not fit)."""
        import torch

        model = models.build(self.model, split.input_shape, split.classes, seed, self.hidden)
        try:
            with torch_threads(1), torch.no_grad():
                model(torch.from_numpy(split.x_test[:2]))
        except RuntimeError as e:
            raise InputError(
                f"model {self.model} does not fit the data (inputs of shape {split.input_shape}): "
                f"{str(e).splitlines()[0]}"
            ) from None
        return model


@dataclass
class FedState:
    learner: Learner
    global_vector: np.ndarray | None  # on the server's host only
    cfg: LearningConfig


def clients_of(links: LinkTable, server: int) -> tuple[np.ndarray, np.ndarray]:
    """The routing tree's parents and its clients (leaves), from the links."""
    parent = bfs_parents(links, server)
    return parent, leaves(parent, server)


@dataclass(frozen=True)
class FedAvg:
    """Federated averaging for ``rounds`` rounds (see the module docstring)."""

    learning: LearningConfig = field(default_factory=LearningConfig)
    rounds: int = 20
    participation: float = 1.0
    deadline_s: float | None = None
    over_selection: float = 0.0
    server: int = 0
    target_accuracy: float = 0.9
    idle_wait_s: float = 1.0

    name: ClassVar[str] = "fedavg"
    needs_connected: ClassVar[bool] = True
    node_attributes: ClassVar[tuple[str, ...]] = ()
    combination: ClassVar[None] = None

    def __post_init__(self) -> None:
        checks.positive_int("rounds", self.rounds)
        checks.number("participation", self.participation, low=0, high=1, low_open=True)
        if self.deadline_s is not None:
            checks.number("deadline_s", self.deadline_s, low=0, low_open=True)
        checks.number("over_selection", self.over_selection, low=0)
        checks.positive_int("server", self.server, minimum=0)
        checks.number("target_accuracy", self.target_accuracy, low=0, high=1)
        checks.number("idle_wait_s", self.idle_wait_s, low=0, low_open=True)

    def validate(self, graph: nx.Graph, seed: int) -> None:
        """Before any host starts: the server exists, has clients, and the
        model fits the data."""
        if self.server not in graph:
            raise InputError(f"server: node {self.server} is not in the topology")
        links = LinkTable.from_graph(graph)
        _, clients = clients_of(links, self.server)
        if len(clients) == 0:
            raise InputError(f"server {self.server}: has no clients (no leaf of its routing tree)")
        self.learning.check_fit(datasets.split(self.learning.data, len(clients), seed), seed)

    # ------------------------------------------------------------ host side
    def init_state(self, setup: HostSetup, rngs_: list[np.random.Generator]) -> FedState:
        links = LinkTable.from_arrays(setup.n_nodes, setup.link_src, setup.link_dst)
        _, clients = clients_of(links, self.server)
        cfg = self.learning
        learner = Learner(setup.seed, setup.devices, clients, cfg.data, cfg.model, cfg.hidden)
        on_host = self.server in set(setup.devices.tolist())
        return FedState(learner, models.get_vector(learner.model) if on_host else None, cfg)

    def kernel(self, name: str) -> Kernel:
        return _KERNELS[name]

    def flops(self, request: Request) -> np.ndarray:
        return np.zeros(len(request.devices))  # charged by the protocol when the work starts

    # ------------------------------------------------------------ driver side
    def protocol(self, sim: Simulation) -> Generator[Any, Any, None]:
        yield from _FedAvgRun(self, sim).run()

    def final(self, metrics: pd.DataFrame) -> Final:
        return accuracy_final(metrics, self.target_accuracy)


def accuracy_final(metrics: pd.DataFrame, target: float) -> Final:
    rows = network_rows(metrics, "accuracy")
    reached = rows[rows["value"] >= target]
    time_to_target = float(reached["time"].iloc[0]) if len(reached) else math.nan
    return Final(
        {
            "accuracy": float(rows["value"].iloc[-1]),
            "best_accuracy": float(rows["value"].max()),
            "time_to_target_s": time_to_target,
        },
        {
            "accuracy": "test accuracy of the global model after the last round",
            "time_to_target_s": f"simulated time at which test accuracy first reached {target:g} "
            "(null: never)",
        },
    )


# ---------------------------------------------------------------- kernels
def _train(state: FedState, call: KernelCall) -> tuple[FedState, Outputs]:
    cfg = state.cfg
    vector = np.asarray(call.params["model"], dtype=np.float32)
    out = np.empty((len(call.devices), len(vector)), dtype=np.float32)
    with torch_threads(cfg.torch_threads):
        for i, d in enumerate(call.devices):
            out[i] = state.learner.train(
                int(d),
                vector,
                epochs=cfg.local_epochs,
                batch_size=cfg.batch_size,
                lr=cfg.lr,
                optimizer=cfg.optimizer,
            )
    return state, {"update": out}


def weighted_average(vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_i w_i v_i / sum_i w_i`` (in float64, returned as float32)."""
    w = np.asarray(weights, dtype=np.float64)
    return (w @ np.asarray(vectors, dtype=np.float64) / w.sum()).astype(np.float32)


def _partial(state: FedState, call: KernelCall) -> tuple[FedState, Outputs]:
    w = np.asarray(call.params["weights"], dtype=np.float64)
    avg = weighted_average(call.params["vectors"], w)
    return state, {"model": avg[None], "weight": np.array([w.sum()])}


def _aggregate(state: FedState, call: KernelCall) -> tuple[FedState, Outputs]:
    assert state.global_vector is not None, "aggregate runs on the server's host"
    w = np.asarray(call.params["weights"], dtype=np.float64)
    if len(w) and w.sum() > 0:
        state.global_vector = weighted_average(call.params["vectors"], w)
    return model_kernel(state, call)


def model_kernel(state: FedState, call: KernelCall) -> tuple[FedState, Outputs]:
    """Outputs the global ``model`` and its test ``accuracy`` and ``loss``."""
    assert state.global_vector is not None
    with torch_threads(state.cfg.torch_threads):
        accuracy, loss = state.learner.evaluate(state.global_vector)
    return state, {
        "model": state.global_vector[None].copy(),
        "accuracy": np.array([accuracy]),
        "loss": np.array([loss]),
    }


def _reset(state: FedState, call: KernelCall) -> tuple[FedState, Outputs]:
    return state, {}  # clients hold no state between rounds


_KERNELS: dict[str, Kernel] = {
    "train": _train,
    "partial": _partial,
    "aggregate": _aggregate,
    "model": model_kernel,
    "reset": _reset,
}


# ---------------------------------------------------------------- the protocol
@dataclass(eq=False)
class _Item:
    """An update travelling up the tree: one client's, or an inner node's average."""

    clients: list[int]
    weight: float
    vector: np.ndarray | None = None  # None: the client's row of the round's training call


@dataclass(eq=False)
class _Round:
    number: int
    start: float
    selected: list[int]
    close_at: int  # updates that close the round early
    closed: simpy.Event
    train: Any = None
    position: dict[int, int] = field(default_factory=dict)
    status: dict[int, str] = field(default_factory=dict)  # client -> used / lost
    arrival: dict[int, float] = field(default_factory=dict)
    items: list[_Item] = field(default_factory=list)
    waiting: dict[int, set[int]] = field(default_factory=dict)  # inner node -> clients due
    buffers: dict[int, list[_Item]] = field(default_factory=dict)
    close_time: float = math.nan
    messages_down: int = 0
    messages_up: int = 0

    @property
    def is_closed(self) -> bool:
        return bool(self.closed.triggered)


class FederatedSetup:
    """Driver side, shared by server-based protocols: the routing tree, the
    clients and their data sizes, the model's size and cost."""

    def __init__(self, learning: LearningConfig, server: int, sim: Simulation) -> None:
        self.learning = learning
        self.server = server
        self.parent, clients = clients_of(sim.links, server)
        self.clients = [int(c) for c in clients]
        split = datasets.split(learning.data, len(self.clients), sim.seed)
        self.samples = {c: len(split.clients[k]) for k, c in enumerate(self.clients)}
        model = learning.check_fit(split, sim.seed)
        self.model_bytes = 4 * models.parameter_count(model)
        self.flops_per_sample = models.training_flops_per_sample(
            model, split.input_shape, split.classes
        )
        self.below: dict[int, list[int]] = {}  # inner node -> its clients
        for c in self.clients:
            node = int(self.parent[c])
            while node >= 0 and node != server:
                self.below.setdefault(node, []).append(c)
                node = int(self.parent[node])

    def train_flops(self, c: int) -> float:
        return self.learning.local_epochs * self.samples[c] * self.flops_per_sample

    def path(self, c: int) -> list[int]:
        """``[c, ..., server]`` along the tree."""
        path = [c]
        while int(self.parent[path[-1]]) >= 0:
            path.append(int(self.parent[path[-1]]))
        return path


class _FedAvgRun:
    """Driver-side state of one FedAvg run."""

    def __init__(self, algo: FedAvg, sim: Simulation) -> None:
        self.algo, self.sim, self.env = algo, sim, sim.env
        setup = FederatedSetup(algo.learning, algo.server, sim)
        self.setup = setup
        self.parent, self.clients, self.samples = setup.parent, setup.clients, setup.samples
        self.model_bytes, self.below = setup.model_bytes, setup.below
        self.train_flops = setup.train_flops
        self.rng = sim.rng("fedavg-select")
        self.target = max(1, math.ceil(algo.participation * len(self.clients)))

    # ------------------------------------------------------------ rounds
    def run(self) -> Generator[Any, Any, None]:
        self._check_deadline()
        server = self.algo.server
        out = self.sim.compute([Request("model", np.array([server]))]).outputs(0)
        self.global_vector = out["model"][0]
        self.sim.record("accuracy", float(out["accuracy"][0]), 0)
        self.sim.record("loss", float(out["loss"][0]), 0)
        for r in range(1, self.algo.rounds + 1):
            yield from self._round(r)
            self.sim.progress(r / self.algo.rounds)

    def _round(self, r: int) -> Generator[Any, Any, None]:
        sim, algo = self.sim, self.algo
        while not sim.network.node_up[algo.server]:  # nobody to run the round
            yield sim.env.timeout(algo.idle_wait_s)
        live = [c for c in self.clients if sim.network.node_up[c]]
        want = (
            math.ceil(self.target * (1 + algo.over_selection)) if algo.deadline_s else self.target
        )
        count = min(len(live), want)
        if count == 0:
            yield sim.env.timeout(algo.idle_wait_s)
            self._record(r, None)
            return
        selected = sorted(int(c) for c in self.rng.choice(live, count, replace=False))
        R = _Round(r, sim.now, selected, min(self.target, count), sim.env.event())
        R.position = {c: i for i, c in enumerate(selected)}
        R.train = sim.compute(
            [Request("train", np.array(selected), params={"model": self.global_vector})]
        )
        for node, below in self.below.items():
            due = set(below) & set(selected)
            if due:
                R.waiting[node] = due
        sim.env.process(self._down(algo.server, selected, R))
        if algo.deadline_s is not None:
            sim.env.process(self._deadline(R))
        yield R.closed
        while not sim.network.node_up[algo.server]:  # it failed mid-round: aggregate when back
            yield sim.env.timeout(algo.idle_wait_s)
        used = list(R.items)
        vectors = [self._vector(R, it) for it in used]
        weights = [it.weight for it in used]
        seconds = sim.spend(np.array([algo.server]), 2.0 * len(used) * self.model_bytes / 4)[0]
        out = sim.compute(
            [
                Request(
                    "aggregate",
                    np.array([algo.server]),
                    params={
                        "vectors": np.array(vectors, dtype=np.float32).reshape(
                            len(used), self.model_bytes // 4
                        ),
                        "weights": np.array(weights, dtype=float),
                    },
                )
            ]
        ).outputs(0)
        self.global_vector = out["model"][0]
        self._record(r, R, float(out["accuracy"][0]), float(out["loss"][0]))
        yield sim.env.timeout(seconds)

    def _vector(self, R: _Round, item: _Item) -> np.ndarray:
        if item.vector is not None:
            return item.vector
        return np.asarray(R.train.outputs(0)["update"][R.position[item.clients[0]]])

    def _record(
        self, r: int, R: _Round | None, accuracy: float = math.nan, loss: float = math.nan
    ) -> None:
        sim = self.sim
        if R is None:  # no live client: the model did not change
            for name in ("selected", "updates_used", "updates_late", "updates_lost"):
                sim.record(name, 0, r)
            return
        used = [c for c, s in R.status.items() if s == "used"]
        lost = [c for c, s in R.status.items() if s == "lost"]
        late = [c for c in R.selected if c not in R.status]
        t = R.close_time
        sim.metrics.add(t, r, -1, "accuracy", accuracy)
        sim.metrics.add(t, r, -1, "loss", loss)
        sim.metrics.add(t, r, -1, "round_duration_s", t - R.start)
        for name, value in (
            ("selected", len(R.selected)),
            ("updates_used", len(used)),
            ("updates_late", len(late)),
            ("updates_lost", len(lost)),
            ("bytes_down", R.messages_down * self.model_bytes),
            ("bytes_up", R.messages_up * self.model_bytes),
        ):
            sim.metrics.add(t, r, -1, name, value)
        for c in R.selected:
            sim.metrics.add(t, r, c, "update_used", 1.0 if c in used else 0.0)
            if c in R.arrival:
                sim.metrics.add(t, r, c, "update_arrival_s", R.arrival[c] - R.start)

    # ------------------------------------------------------------ messages
    def _down(self, node: int, clients: list[int], R: _Round) -> Generator[Any, Any, None]:
        """``node`` has the model now: send it on towards ``clients``."""
        sim = self.sim
        hops: dict[int, list[int]] = {}
        for c in clients:
            hop = c
            while int(self.parent[hop]) != node:
                hop = int(self.parent[hop])
            hops.setdefault(hop, []).append(c)
        kids = sorted(hops)
        batch = sim.unicast(np.full(len(kids), node), np.array(kids), sim.now, self.model_bytes)
        R.messages_down += len(kids)
        for j, kid in enumerate(kids):
            sim.env.process(self._hop_down(batch, j, kid, hops[kid], R))
        yield from ()

    def _hop_down(
        self, batch: Any, j: int, kid: int, clients: list[int], R: _Round
    ) -> Generator[Any, Any, None]:
        sim = self.sim
        yield sim.timeout_until(float(batch.t_arrive[j]))
        if j not in set(sim.delivered(batch).tolist()):
            self._lose(R, clients)
        elif kid in R.position:
            yield from self._local_training(kid, R)
        else:
            yield from self._down(kid, clients, R)

    def _local_training(self, c: int, R: _Round) -> Generator[Any, Any, None]:
        sim = self.sim
        start = sim.now
        seconds = sim.spend(np.array([c]), self.train_flops(c))[0]
        yield sim.timeout_until(start + seconds)
        net = sim.network
        if not net.node_up[c] or net.node_down_since[c] >= start:  # failed while training
            self._lose(R, [c])
            return
        yield from self._up(c, _Item([c], float(self.samples[c])), R)

    def _up(self, node: int, item: _Item, R: _Round) -> Generator[Any, Any, None]:
        sim = self.sim
        parent = int(self.parent[node])
        batch = sim.unicast(np.array([node]), np.array([parent]), sim.now, self.model_bytes)
        R.messages_up += 1
        yield sim.timeout_until(float(batch.t_arrive[0]))
        if not len(sim.delivered(batch)):
            self._lose(R, item.clients)
        elif parent == self.algo.server:
            self._arrive(R, item)
        else:
            R.buffers.setdefault(parent, []).append(item)
            R.waiting[parent] -= set(item.clients)
            self._maybe_forward(parent, R)

    def _maybe_forward(self, node: int, R: _Round) -> None:
        if R.waiting.get(node) or not R.buffers.get(node):
            return
        R.waiting.pop(node, None)
        self.sim.env.process(self._forward(node, R.buffers.pop(node), R))

    def _forward(self, node: int, items: list[_Item], R: _Round) -> Generator[Any, Any, None]:
        """An inner node averages its clients' updates and sends one message up."""
        sim = self.sim
        clients = [c for it in items for c in it.clients]
        if not sim.network.node_up[node]:
            self._lose(R, clients)
            return
        start = sim.now
        seconds = sim.spend(np.array([node]), 2.0 * len(items) * self.model_bytes / 4)[0]
        out = sim.compute(
            [
                Request(
                    "partial",
                    np.array([node]),
                    params={
                        "vectors": np.array([self._vector(R, it) for it in items]),
                        "weights": np.array([it.weight for it in items]),
                    },
                )
            ]
        ).outputs(0)
        yield sim.timeout_until(start + seconds)
        if not sim.network.node_up[node] or sim.network.node_down_since[node] >= start:
            self._lose(R, clients)
            return
        merged = _Item(clients, float(out["weight"][0]), out["model"][0])
        yield from self._up(node, merged, R)

    # ------------------------------------------------------------ bookkeeping
    def _arrive(self, R: _Round, item: _Item) -> None:
        if R.is_closed:
            return  # late: unused
        R.items.append(item)
        for c in item.clients:
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
        deadline_mode = self.algo.deadline_s is not None
        if len(R.status) == len(R.selected) or (deadline_mode and used >= R.close_at):
            R.close_time = self.sim.now
            R.closed.succeed()

    def _deadline(self, R: _Round) -> Generator[Any, Any, None]:
        assert self.algo.deadline_s is not None
        yield self.sim.timeout_until(R.start + self.algo.deadline_s)
        if not R.is_closed:
            R.close_time = self.sim.now
            R.closed.succeed()

    def _check_deadline(self) -> None:
        """A deadline that no client can ever meet is bad input."""
        deadline = self.algo.deadline_s
        if deadline is None:
            return
        sim = self.sim
        best, parts = math.inf, (0.0, 0.0, 0.0)
        for c in self.clients:
            path = self.setup.path(c)
            up = sum(self._hop_seconds(path[i], path[i + 1]) for i in range(len(path) - 1))
            down = sum(self._hop_seconds(path[i + 1], path[i]) for i in range(len(path) - 1))
            train = self.train_flops(c) / sim.nominal_compute_flops[c]
            if down + train + up < best:
                best, parts = down + train + up, (down, train, up)
        if best > deadline:
            raise InputError(
                f"deadline_s={deadline:g}: no client can ever meet it; the fastest round takes "
                f"{best:.3g} s (download {parts[0]:.3g} s, training {parts[1]:.3g} s, "
                f"upload {parts[2]:.3g} s)"
            )

    def _hop_seconds(self, u: int, v: int) -> float:
        """Transfer of one model over the link ``u -> v`` with empty queues."""
        e = int(self.sim.links.index(np.array([u]), np.array([v]))[0])
        net = self.sim.network
        return self.model_bytes / float(net.nominal_link_rate[e]) + float(net.nominal_latency_s[e])
