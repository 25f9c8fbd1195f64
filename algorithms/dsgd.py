"""Decentralized parallel SGD (D-PSGD; Lian et al., "Can decentralized
algorithms outperform centralized algorithms?", NeurIPS 2017) over any
topology.

Every node holds a model, all starting from the same initial model. Each
synchronous round (:mod:`algorithms.rounds`) a node combines its model with
the models it heard from, with the combination weights re-normalized over the
neighbours heard (:mod:`algorithms.combine`), then trains ``local_epochs`` on
its own shard, and broadcasts the result (``4 * parameters`` bytes).

Cost per node and round: the combination, ``2 P (heard + 1) + P`` FLOPs for
``P`` parameters, plus training, ``epochs * examples * FLOPs per example``
(counted from the model).

Metrics every ``eval_every`` rounds: ``accuracy`` and ``loss`` of the average
of all nodes' models (the analogue of FedAvg's global model),
``node_accuracy`` (the mean of each node's own accuracy) and
``consensus_distance`` (mean squared distance of the models to their
average). Evaluation is measurement and costs no simulated time.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import networkx as nx
import numpy as np
import pandas as pd

from actors.host import HostSetup, Inbox, Kernel, KernelCall, Outputs, Request
from algorithms import datasets, models
from algorithms.base import Final
from algorithms.combine import combine, combine_flops
from algorithms.fedavg import LearningConfig, accuracy_final
from algorithms.learning import Learner, evaluate
from algorithms.models import torch_threads
from algorithms.rounds import synchronous_rounds
from netsim import checks
from netsim import rng as rngs

if TYPE_CHECKING:
    from netsim.simulation import Simulation


@dataclass
class DSGDState:
    learner: Learner
    params: np.ndarray  # (devices, P)
    initial: np.ndarray
    self_weight: np.ndarray
    link_weight: np.ndarray
    cfg: LearningConfig


@dataclass(frozen=True)
class DSGD:
    """D-PSGD for ``rounds`` rounds (see the module docstring)."""

    learning: LearningConfig = field(default_factory=LearningConfig)
    rounds: int = 50
    weights: str = "metropolis"
    eval_every: int = 1
    target_accuracy: float = 0.9
    period_s: float | None = None

    name: ClassVar[str] = "dsgd"
    needs_connected: ClassVar[bool] = True
    node_attributes: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        checks.positive_int("rounds", self.rounds)
        checks.positive_int("eval_every", self.eval_every)
        checks.number("target_accuracy", self.target_accuracy, low=0, high=1)
        if self.period_s is not None:
            checks.number("period_s", self.period_s, low=0, low_open=True)

    @property
    def combination(self) -> str:
        return self.weights

    def validate(self, graph: nx.Graph, seed: int) -> None:
        split = datasets.split(self.learning.data, graph.number_of_nodes(), seed)
        self.learning.check_fit(split, seed)

    # ------------------------------------------------------------ host side
    def init_state(self, setup: HostSetup, rngs_: list[np.random.Generator]) -> DSGDState:
        assert setup.self_weight is not None and setup.link_weight is not None
        cfg = self.learning
        everyone = np.arange(setup.n_nodes)
        learner = Learner(setup.seed, setup.devices, everyone, cfg.data, cfg.model, cfg.hidden)
        start = models.get_vector(learner.model)
        params = np.tile(start, (len(setup.devices), 1))
        return DSGDState(
            learner, params, start, setup.self_weight[setup.devices], setup.link_weight, cfg
        )

    def kernel(self, name: str) -> Kernel:
        return _KERNELS[name]

    def flops(self, request: Request) -> np.ndarray:
        raise RuntimeError("the D-PSGD protocol sets its own cost model")

    # ------------------------------------------------------------ driver side
    def protocol(self, sim: Simulation) -> Generator[Any, Any, None]:
        yield from synchronous_rounds(sim, _DSGDRun(self, sim))

    def final(self, metrics: pd.DataFrame) -> Final:
        return accuracy_final(metrics, self.target_accuracy)


class _DSGDRun:
    """Driver-side state: the data sizes that set each node's cost, and an
    evaluator for the average model."""

    def __init__(self, algo: DSGD, sim: Simulation) -> None:
        cfg = algo.learning
        self.algo = algo
        self.rounds = algo.rounds
        self.period_s = algo.period_s
        self.cooperative = True
        self.observed: tuple[str, ...] = ("payload", "accuracy", "loss")
        self.split = datasets.split(cfg.data, sim.n_nodes, sim.seed)
        self.samples = np.array([len(c) for c in self.split.clients], dtype=float)
        self.model = cfg.check_fit(self.split, rngs.int_seed(sim.seed, "model-init"))
        self.n_params = models.parameter_count(self.model)
        self.payload_bytes = 4 * self.n_params
        fps = models.training_flops_per_sample(
            self.model, self.split.input_shape, self.split.classes
        )
        self.train_flops = cfg.local_epochs * self.samples * fps
        sim.cost = self  # the cost of a step depends on each node's data

    def flops(self, request: Request) -> np.ndarray:
        if request.kernel == "step":
            assert request.inbox is not None
            heard = request.inbox.counts()
            return combine_flops(self.n_params, heard) + self.train_flops[request.devices]
        return np.zeros(len(request.devices))

    def step_flops(self, heard: np.ndarray) -> np.ndarray:
        return combine_flops(self.n_params, heard) + self.train_flops

    def _evaluate(self, r: int) -> bool:
        return r % self.algo.eval_every == 0 or r == self.rounds

    def start_request(self, live: np.ndarray) -> Request:
        return Request("share", live)

    def step_request(self, r: int, live: np.ndarray, inbox: Inbox) -> Request:
        return Request("step", live, params={"evaluate": self._evaluate(r)}, inbox=inbox)

    def measure_request(self, nodes: np.ndarray) -> Request:
        return Request("measure", nodes)

    def record(
        self, sim: Simulation, step: int, time: float, observed: dict[str, np.ndarray]
    ) -> None:
        if not (step == 0 or self._evaluate(step)):
            return
        params = observed["payload"].astype(np.float64)
        average = params.mean(axis=0)
        models.set_vector(self.model, average.astype(np.float32))
        with torch_threads(self.algo.learning.torch_threads):
            accuracy, loss = evaluate(self.model, self.split.x_test, self.split.y_test)
        add = sim.metrics.add
        add(time, step, -1, "accuracy", accuracy)
        add(time, step, -1, "loss", loss)
        add(time, step, -1, "node_accuracy", float(np.mean(observed["accuracy"])))
        add(
            time,
            step,
            -1,
            "consensus_distance",
            float(np.mean(np.sum((params - average) ** 2, axis=1))),
        )
        if step == self.rounds:  # each node's own model, at the end
            sim.metrics.extend(time, step, np.arange(sim.n_nodes), "accuracy", observed["accuracy"])


# ---------------------------------------------------------------- kernels
def _own_scores(
    state: DSGDState, rows: np.ndarray, vectors: np.ndarray, on: bool
) -> dict[str, np.ndarray]:
    acc, loss = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
    if on:
        with torch_threads(state.cfg.torch_threads):
            for i, v in enumerate(vectors):
                acc[i], loss[i] = state.learner.evaluate(v)
    return {"accuracy": acc, "loss": loss}


def _share(state: DSGDState, call: KernelCall) -> tuple[DSGDState, Outputs]:
    return state, {"payload": state.params[call.idx].copy()}


def _step(state: DSGDState, call: KernelCall) -> tuple[DSGDState, Outputs]:
    assert call.inbox is not None
    idx, cfg = call.idx, state.cfg
    mixed = combine(
        state.params[idx].astype(np.float64),
        state.self_weight[idx],
        call.inbox,
        state.link_weight,
    ).astype(np.float32)
    with torch_threads(cfg.torch_threads):
        for i, d in enumerate(call.devices):
            mixed[i] = state.learner.train(
                int(d),
                mixed[i],
                epochs=cfg.local_epochs,
                batch_size=cfg.batch_size,
                lr=cfg.lr,
                optimizer=cfg.optimizer,
            )
    state.params[idx] = mixed
    out = {"payload": mixed.copy()}
    out |= _own_scores(state, idx, mixed, bool(call.params["evaluate"]))
    return state, out


def _measure(state: DSGDState, call: KernelCall) -> tuple[DSGDState, Outputs]:
    vectors = state.params[call.idx]
    return state, {"payload": vectors.copy(), **_own_scores(state, call.idx, vectors, True)}


def _reset(state: DSGDState, call: KernelCall) -> tuple[DSGDState, Outputs]:
    state.params[call.idx] = state.initial
    return state, {}


_KERNELS: dict[str, Kernel] = {"share": _share, "step": _step, "measure": _measure, "reset": _reset}
