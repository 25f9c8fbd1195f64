"""Decentralized parallel SGD (D-PSGD; Lian et al., "Can decentralized
algorithms outperform centralized algorithms?", NeurIPS 2017) over any
topology.

Every node holds a model, all starting from the same initial model. Each
synchronous round (:mod:`algorithms.rounds`) a node combines its model with
the models it heard from, with the combination weights re-normalized over the
neighbours heard (:mod:`algorithms.combine`), then trains ``local_epochs`` on
its own shard, and broadcasts the result, encoded by ``codec`` (any codec
that carries models: float32 by default, ``4 * parameters`` bytes).

Cost per node and round: decoding what it heard, the combination
(``2 P (heard + 1) + P`` FLOPs for ``P`` parameters) and training
(``epochs * examples * FLOPs per example``, counted on the model), then
encoding (the FLOPs the codec reports, queued after the step).

Metrics every ``eval_every`` rounds: ``accuracy`` and ``loss`` of the average
of all nodes' models (the analogue of FedAvg's global model),
``node_accuracy`` (the mean of each node's own accuracy) and
``consensus_distance`` (mean squared distance of the models to their
average). The average is formed on a host from the models left there, never
on the driver. Evaluation is measurement and costs no simulated time.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import networkx as nx
import numpy as np
import pandas as pd

from algorithms import datasets
from algorithms.base import Final
from algorithms.combine import combine, combine_flops
from algorithms.federated.codecs import Codec, Identity
from algorithms.learner import Learner
from algorithms.learning import LearningConfig, accuracy_final, cost_table
from algorithms.rounds import synchronous_rounds
from netsim import checks
from netsim.dispatch import PayloadSource
from netsim.errors import InputError
from netsim.kernel import HostSetup, Inbox, Kernel, KernelCall, Outputs, Payloads, Request

if TYPE_CHECKING:
    from netsim.simulation import Simulation


@dataclass
class DSGDState:
    learner: Learner
    params: np.ndarray  # (devices, P)
    initial: np.ndarray
    self_weight: np.ndarray
    link_weight: np.ndarray
    memory: dict[int, np.ndarray | None]


@dataclass(frozen=True)
class DSGD:
    """D-PSGD for ``rounds`` rounds (see the module docstring)."""

    learning: LearningConfig = field(default_factory=LearningConfig)
    rounds: int = 50
    weights: str = "metropolis"
    eval_every: int = 1
    target_accuracy: float = 0.9
    period_s: float | None = None
    codec: Codec = field(default_factory=Identity)

    name: ClassVar[str] = "dsgd"
    needs_connected: ClassVar[bool] = True
    node_attributes: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        checks.positive_int("rounds", self.rounds)
        checks.positive_int("eval_every", self.eval_every)
        checks.number("target_accuracy", self.target_accuracy, low=0, high=1)
        if self.period_s is not None:
            checks.number("period_s", self.period_s, low=0, low_open=True)
        if self.codec.target == "delta":
            raise InputError(f"dsgd: codec {self.codec.name} encodes updates; nodes send models")
        if len(self.learning.specs) > 1:
            raise InputError("dsgd: one model prototype only (neighbours average their models)")

    @property
    def combination(self) -> str:
        return self.weights

    def check(self, graph: nx.Graph, seed: int) -> None:
        split = datasets.split(self.learning.data, graph.number_of_nodes(), seed)
        self.learning.check_fit(split, seed)

    # ------------------------------------------------------------ host side
    @property
    def program(self) -> DSGD:
        return self

    def init_state(self, setup: HostSetup, rngs_: list[np.random.Generator]) -> DSGDState:
        assert setup.self_weight is not None and setup.link_weight is not None
        everyone = np.arange(setup.n_nodes)
        prototypes = self.learning.prototype_of(setup.nodes, everyone)
        learner = Learner(self.learning, setup.seed, setup.devices, everyone, prototypes)
        (start,) = learner.initial.values()
        params = np.tile(start, (len(setup.devices), 1))
        sw = setup.self_weight[setup.devices]
        return DSGDState(learner, params, start, sw, setup.link_weight, {})

    def kernel(self, name: str) -> Kernel:
        kernels: dict[str, Kernel] = {
            "share": self._share,
            "step": self._step,
            "measure": self._measure,
            "average": _average,
        }
        return kernels[name]

    def reset(self, state: DSGDState, call: KernelCall) -> tuple[DSGDState, Outputs]:
        state.params[call.idx] = state.initial
        for d in call.devices.tolist():
            state.memory.pop(d, None)
        return state, {}

    def cost(self, request: Request) -> np.ndarray:
        if request.kernel != "step":
            return np.zeros(len(request.devices))
        assert request.inbox is not None
        heard = request.inbox.counts()
        size = int(request.params["size"])
        decode = heard * self.codec.decode_flops(size, "model")
        return combine_flops(size, heard) + decode + request.inputs["train_flops"]

    # ------------------------------------------------------------ kernels
    def _encode(self, state: DSGDState, call: KernelCall, vectors: np.ndarray) -> Outputs:
        """The models as messages (raw float32 rows with no codec)."""
        if isinstance(self.codec, Identity):
            return {
                "payload": Payloads.rows(vectors.copy()),
                "reported_flops": np.zeros(len(vectors)),
            }
        messages, flops = [], np.zeros(len(vectors))
        for i, d in enumerate(call.devices.tolist()):
            rng = call.rngs[int(call.idx[i])]
            m, state.memory[d], flops[i] = self.codec.encode(
                vectors[i], state.memory.get(d), rng, "model"
            )
            messages.append(m)
        return {
            "payload": Payloads.objects(messages, [m.nbytes for m in messages]),
            "reported_flops": flops,
        }

    def _decoded(self, inbox: Inbox) -> Inbox:
        if isinstance(self.codec, Identity) or len(inbox.payload) == 0:
            return inbox
        rows = np.array([self.codec.decode(m, None) for m in inbox.payload], dtype=np.float64)
        return Inbox(inbox.indptr, inbox.sender, inbox.link, inbox.row, rows)

    def _share(self, state: DSGDState, call: KernelCall) -> tuple[DSGDState, Outputs]:
        return state, self._encode(state, call, state.params[call.idx])

    def _step(self, state: DSGDState, call: KernelCall) -> tuple[DSGDState, Outputs]:
        assert call.inbox is not None
        idx = call.idx
        own = state.params[idx].astype(np.float64)
        mixed = combine(own, state.self_weight[idx], self._decoded(call.inbox), state.link_weight)
        mixed = mixed.astype(np.float32)
        for i, d in enumerate(call.devices.tolist()):
            mixed[i] = state.learner.train(d, mixed[i])
        state.params[idx] = mixed
        out = self._encode(state, call, mixed)
        out |= _own_scores(state, mixed, bool(call.params["evaluate"]))
        out["params"] = Payloads.rows(mixed.copy())
        return state, out

    def _measure(self, state: DSGDState, call: KernelCall) -> tuple[DSGDState, Outputs]:
        vectors = state.params[call.idx]
        out: Outputs = {
            **_own_scores(state, vectors, True),
            "params": Payloads.rows(vectors.copy()),
        }
        return state, out

    # ------------------------------------------------------------ driver side
    def protocol(self, sim: Simulation) -> Generator[Any, Any, None]:
        yield from synchronous_rounds(sim, _DSGDRun(self, sim))

    def final(self, metrics: pd.DataFrame) -> Final:
        return accuracy_final(metrics, self.target_accuracy)


class _DSGDRun:
    """Driver-side state: the data sizes that set each node's cost."""

    def __init__(self, algo: DSGD, sim: Simulation) -> None:
        cfg = algo.learning
        self.algo = algo
        self.rounds = algo.rounds
        self.period_s = algo.period_s
        self.cooperative = True
        self.observed: tuple[str, ...] = ("accuracy", "loss")
        self.observed_payloads: tuple[str, ...] = ("params",)
        split = datasets.split(cfg.data, sim.n_nodes, sim.seed)
        samples = np.array([len(c) for c in split.clients], dtype=float)
        (cost,) = cost_table(cfg, split, sim.seed).values()
        self.n_params = cost.parameters
        self.train_flops = cfg.local_epochs * samples * cost.train_flops

    def step_flops(self, heard: np.ndarray) -> np.ndarray:
        decode = heard * self.algo.codec.decode_flops(self.n_params, "model")
        return combine_flops(self.n_params, heard) + decode + self.train_flops

    def _evaluate(self, r: int) -> bool:
        return r % self.algo.eval_every == 0 or r == self.rounds

    def start_request(self, live: np.ndarray) -> Request:
        return Request("share", live)

    def step_request(self, r: int, live: np.ndarray, inbox: Inbox) -> Request:
        return Request(
            "step",
            live,
            inputs={"train_flops": self.train_flops[live]},
            params={"evaluate": self._evaluate(r), "size": self.n_params},
            inbox=inbox,
        )

    def measure_request(self, nodes: np.ndarray) -> Request:
        return Request("measure", nodes)

    def record(
        self,
        sim: Simulation,
        step: int,
        time: float,
        observed: dict[str, np.ndarray],
        payloads: dict[str, PayloadSource],
    ) -> None:
        if not (step == 0 or self._evaluate(step)):
            return
        n = sim.n_nodes
        source = payloads["params"]
        rows = np.arange(n) if source.row_of is None else source.row_of
        inbox = Inbox.gather(1, source.data, rows, np.arange(n))
        out = sim.compute([Request("average", np.array([0]), inbox=inbox)]).outputs(0)
        add = sim.metrics.add
        add(time, step, -1, "accuracy", float(out["accuracy"][0]))
        add(time, step, -1, "loss", float(out["loss"][0]))
        add(time, step, -1, "node_accuracy", float(np.mean(observed["accuracy"])))
        add(time, step, -1, "consensus_distance", float(out["consensus_distance"][0]))
        if step == self.rounds:  # each node's own model, at the end
            sim.metrics.extend(time, step, np.arange(n), "accuracy", observed["accuracy"])


# ---------------------------------------------------------------- kernels
def _own_scores(state: DSGDState, vectors: np.ndarray, on: bool) -> dict[str, np.ndarray]:
    acc, loss = np.full(len(vectors), np.nan), np.full(len(vectors), np.nan)
    if on:
        (prototype,) = state.learner.models
        for i, v in enumerate(vectors):
            acc[i], loss[i] = state.learner.evaluate(prototype, v)
    return {"accuracy": acc, "loss": loss}


def _average(state: DSGDState, call: KernelCall) -> tuple[DSGDState, Outputs]:
    """Accuracy and loss of the average of the models in the inbox, and their
    mean squared distance to it (measurement: costs no time)."""
    assert call.inbox is not None
    params = np.asarray(call.inbox.messages(0), dtype=np.float64)
    average = params.mean(axis=0)
    (prototype,) = state.learner.models
    accuracy, loss = state.learner.evaluate(prototype, average.astype(np.float32))
    distance = float(np.mean(np.sum((params - average) ** 2, axis=1)))
    return state, {
        "accuracy": np.array([accuracy]),
        "loss": np.array([loss]),
        "consensus_distance": np.array([distance]),
    }
