"""Synchronous average consensus: ``x(t+1) = W x(t)``.

Every node starts with a random vector ``x_k(0) ~ N(0, I_dim)`` (its own
stream) and in each round replaces it by the weighted average of its own and
its neighbours' values (:mod:`algorithms.combine`). With a symmetric doubly
stochastic ``W`` on a connected graph every ``x_k`` tends to the initial mean,
and the error ``||x(t) - mean||`` shrinks asymptotically as ``SLEM(W)^t``
(Boyd, Ghosh, Prabhakar, Shah 2006; ``papers.md`` section 2).

Metric ``consensus_error`` = ``||x(t) - mean|| / ||x(0) - mean||`` over all
nodes, each round. Under failures the weights are re-normalized over the
neighbours heard, which keeps every update a convex combination but not the
mean.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import numpy as np
import pandas as pd

from algorithms.base import Final, NoChecks, network_rows
from algorithms.combine import combination_weights, combine, combine_flops
from algorithms.rounds import synchronous_rounds
from netsim import checks
from netsim.kernel import HostSetup, Inbox, Kernel, KernelCall, Outputs, Payloads, Request
from netsim.streams import Streams

if TYPE_CHECKING:
    from netsim.simulation import Simulation


@dataclass
class ConsensusState:
    x: np.ndarray  # (devices, dim)
    x0: np.ndarray
    self_weight: np.ndarray
    link_weight: np.ndarray


def initial_values(seed: int, devices: np.ndarray, dim: int) -> np.ndarray:
    """``x_k(0) ~ N(0, I)`` from each device's own stream. O(devices)."""
    out = np.empty((len(devices), dim))

    def draw(i: int, g: np.random.Generator) -> None:
        g.standard_normal(out=out[i])

    Streams(seed, "consensus-init", devices).draw(draw)
    return out


@dataclass(frozen=True)
class AverageConsensus(NoChecks):
    """Synchronous average consensus for ``iterations`` rounds."""

    iterations: int = 100
    dim: int = 1
    weights: str = "metropolis"
    period_s: float | None = None

    name: ClassVar[str] = "consensus"
    needs_connected: ClassVar[bool] = True
    node_attributes: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        checks.positive_int("iterations", self.iterations)
        checks.positive_int("dim", self.dim)
        if self.period_s is not None:
            checks.number("period_s", self.period_s, low=0, low_open=True)

    @property
    def combination(self) -> str:
        return self.weights

    # ------------------------------------------------------------ host side
    @property
    def program(self) -> AverageConsensus:
        return self

    def init_state(self, setup: HostSetup, rngs_: list[np.random.Generator]) -> ConsensusState:
        x0 = initial_values(setup.seed, setup.devices, self.dim)
        return ConsensusState(x0.copy(), x0, *combination_weights(setup))

    def kernel(self, name: str) -> Kernel:
        return _KERNELS[name]

    def reset(self, state: ConsensusState, call: KernelCall) -> tuple[ConsensusState, Outputs]:
        return reset_kernel(state, call)

    def cost(self, request: Request) -> np.ndarray:
        if request.kernel == "step":
            assert request.inbox is not None
            return self.step_flops(request.inbox.counts())
        return np.zeros(len(request.devices))

    def step_flops(self, heard: np.ndarray) -> np.ndarray:
        return combine_flops(self.dim, heard)

    def payload_nbytes(self, request: Request) -> dict[str, np.ndarray]:
        """Sizes of a request's payloads before it runs: ``share`` and
        ``step`` send one float64 row of ``dim`` per device, nothing else does."""
        if request.kernel in ("share", "step"):
            return {"payload": np.full(len(request.devices), 8 * self.dim, dtype=np.int64)}
        return {}

    # ------------------------------------------------------------ driver side
    def protocol(self, sim: Simulation) -> Generator[Any, Any, None]:
        x0 = sim.compute([Request("initial", np.arange(sim.n_nodes))]).outputs(0)["x"]
        yield from synchronous_rounds(sim, _ConsensusRun(self, x0))

    def final(self, metrics: pd.DataFrame) -> Final:
        rows = network_rows(metrics, "consensus_error")
        return Final(
            {"consensus_error": float(rows["value"].iloc[-1])},
            {"consensus_error": "||x - mean|| / ||x(0) - mean|| after the last round"},
        )


class _ConsensusRun:
    """Driver-side state of one run: the reference mean and initial error."""

    def __init__(self, algo: AverageConsensus, x0: np.ndarray) -> None:
        self.algo = algo
        self.rounds = algo.iterations
        self.period_s = algo.period_s
        self.observed: tuple[str, ...] = ("err2",)
        self.observed_payloads: tuple[str, ...] = ()
        self.cooperative = True
        self.reports_flops = False
        self.mean = x0.mean(axis=0)
        norm0 = float(np.linalg.norm(x0 - self.mean))
        self.norm0 = norm0 if norm0 > 0 else 1.0

    def step_flops(self, heard: np.ndarray) -> np.ndarray:
        return self.algo.step_flops(heard)

    def start_request(self, live: np.ndarray) -> Request:
        return Request("share", live)

    def step_request(self, r: int, live: np.ndarray, inbox: Inbox) -> Request:
        return Request("step", live, params={"mean": self.mean}, inbox=inbox)

    def measure_request(self, nodes: np.ndarray) -> Request:
        return Request("measure", nodes, params={"mean": self.mean})

    def record(
        self,
        sim: Simulation,
        step: int,
        time: float,
        observed: dict[str, np.ndarray],
        payloads: dict[str, Any],
    ) -> None:
        error = float(np.sqrt(observed["err2"].sum())) / self.norm0
        sim.metrics.add(time, step, -1, "consensus_error", error)


# ---------------------------------------------------------------- kernels
# Kernels over any state with values ``x`` and initial values ``x0`` (gossip shares them).
class Values(Protocol):
    x: np.ndarray
    x0: np.ndarray


S = TypeVar("S", bound=Values)


def initial_kernel(state: S, call: KernelCall) -> tuple[S, Outputs]:
    """Outputs ``x``: the initial values (to compute their mean)."""
    return state, {"x": state.x0[call.idx].copy()}


def _err2(state: Values, call: KernelCall) -> np.ndarray:
    dev = state.x[call.idx] - np.asarray(call.params["mean"])
    return np.sum(dev * dev, axis=1)


def measure_kernel(state: S, call: KernelCall) -> tuple[S, Outputs]:
    """Outputs ``err2 = ||x_k - mean||^2`` (``params["mean"]``)."""
    return state, {"err2": _err2(state, call)}


def reset_kernel(state: S, call: KernelCall) -> tuple[S, Outputs]:
    """Back to the initial values (a restarted device)."""
    state.x[call.idx] = state.x0[call.idx]
    return state, {}


def _share(state: ConsensusState, call: KernelCall) -> tuple[ConsensusState, Outputs]:
    return state, {"payload": Payloads.rows(state.x[call.idx].copy())}


def _step(state: ConsensusState, call: KernelCall) -> tuple[ConsensusState, Outputs]:
    assert call.inbox is not None
    idx = call.rows
    state.x[idx] = combine(state.x[idx], state.self_weight[idx], call.inbox, state.link_weight)
    return state, {"payload": Payloads.rows(state.x[idx].copy()), "err2": _err2(state, call)}


_KERNELS: dict[str, Kernel] = {
    "share": _share,
    "initial": initial_kernel,
    "step": _step,
    "measure": measure_kernel,
}
