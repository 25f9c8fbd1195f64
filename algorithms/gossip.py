"""Randomized (asynchronous) gossip averaging on Poisson clocks
(Boyd, Ghosh, Prabhakar, Shah, "Randomized gossip algorithms", 2006).

Each node's clock ticks at the times of a Poisson process of ``rate`` per
second (its own stream). At a tick, node ``i`` (if up) picks a neighbour ``j``
uniformly and sends it ``x_i``. On arrival ``j`` replies with
``delta = (x_j - x_i) / 2`` and sets ``x_j <- x_j - delta``; when the reply
arrives ``i`` sets ``x_i <- x_i + delta``. Each exchange moves an equal and
opposite amount between the two nodes, so the sum — hence the mean — is
preserved exactly even when exchanges overlap; a lost reply breaks that, as
it would on a real network.

One iteration is ``1 / rate`` seconds (every node ticks once on average);
``consensus_error`` is recorded each iteration. Messages carry ``dim``
float64 values. Costs: ``3 dim`` FLOPs to answer, ``dim`` to apply the reply.

Two protocols, one result. ``window=False``: a SimPy process per node's
clock and per exchange (read, ask, respond, reply, apply), the reference.
``window=True`` (default): :mod:`algorithms.gossip_window` processes the
same events a window of virtual time at a time (windows shorter than the
smallest link latency, ending at every measurement and failure event), as
vectors: the same metrics, message counts, bytes, busy times and energy, bit
for bit, with loss, failures, churn, restarts and link changes; only the
summary's ``host_calls`` differs (one call a rank of a window, not three an
exchange). Runs with a link latency of 0 or with batteries fall back to the
per-exchange protocol.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from algorithms.base import Final, NoChecks, network_rows
from algorithms.consensus import initial_kernel, initial_values, measure_kernel, reset_kernel
from algorithms.gossip_window import Windows, can_window
from netsim import checks
from netsim.kernel import HostSetup, Kernel, KernelCall, Outputs, Payloads, Request

if TYPE_CHECKING:
    from netsim.simulation import Simulation


@dataclass
class GossipState:
    x: np.ndarray
    x0: np.ndarray


@dataclass(frozen=True)
class RandomizedGossip(NoChecks):
    """Pairwise gossip averaging for ``iterations / rate`` simulated seconds."""

    iterations: int = 100
    dim: int = 1
    rate: float = 1.0
    window: bool = (
        True  # windowed protocol (same results, vectorized); False: one process an exchange
    )

    name: ClassVar[str] = "gossip"
    needs_connected: ClassVar[bool] = True
    node_attributes: ClassVar[tuple[str, ...]] = ()
    combination: ClassVar[None] = None

    def __post_init__(self) -> None:
        checks.positive_int("iterations", self.iterations)
        checks.positive_int("dim", self.dim)
        checks.number("rate", self.rate, low=0, low_open=True)
        checks.choice("window", self.window, (True, False))

    # ------------------------------------------------------------ host side
    @property
    def program(self) -> RandomizedGossip:
        return self

    def init_state(self, setup: HostSetup, rngs_: list[np.random.Generator]) -> GossipState:
        x0 = initial_values(setup.seed, setup.devices, self.dim)
        return GossipState(x0.copy(), x0)

    def kernel(self, name: str) -> Kernel:
        return _KERNELS[name]

    def reset(self, state: GossipState, call: KernelCall) -> tuple[GossipState, Outputs]:
        return reset_kernel(state, call)

    def cost(self, request: Request) -> np.ndarray:
        per_device = {"respond": 3.0 * self.dim, "apply": 1.0 * self.dim}.get(request.kernel, 0.0)
        return np.full(len(request.devices), per_device)

    # ------------------------------------------------------------ driver side
    def protocol(self, sim: Simulation) -> Generator[Any, Any, None]:
        all_nodes = np.arange(sim.n_nodes)
        x0 = sim.compute([Request("initial", all_nodes)]).outputs(0)["x"]
        mean = x0.mean(axis=0)
        norm0 = float(np.linalg.norm(x0 - mean)) or 1.0
        windows = Windows(self, sim) if self.window and can_window(sim) else None
        if windows is None:
            for k in range(sim.n_nodes):
                sim.env.process(self._clock(sim, k))
        for step in range(self.iterations + 1):
            if step:
                end = sim.env.now + 1.0 / self.rate  # as SimPy times the timeout
                measure = sim.env.timeout(1.0 / self.rate)
                if windows is None:
                    yield measure
                else:
                    yield from windows.until(float(end), measure)
            err2 = sim.compute([Request("measure", all_nodes, params={"mean": mean})]).outputs(0)
            sim.record("consensus_error", float(np.sqrt(err2["err2"].sum())) / norm0, step)
            sim.progress(step / self.iterations)

    def _clock(self, sim: Simulation, k: int) -> Generator[Any, Any, None]:
        rng = sim.rng("gossip-clock", k)
        links = sim.links
        neighbours = links.dst[links.out_links[links.out_ptr[k] : links.out_ptr[k + 1]]]
        while True:
            yield sim.env.timeout(rng.exponential(1.0 / self.rate))
            if len(neighbours) == 0 or not sim.network.node_up[k]:
                continue  # a down node's clock ticks, but it does nothing
            j = int(neighbours[rng.integers(len(neighbours))])
            sim.env.process(self._exchange(sim, k, j))

    def _exchange(self, sim: Simulation, i: int, j: int) -> Generator[Any, Any, None]:
        src, dst = np.array([i]), np.array([j])
        read = sim.compute([Request("read", src)])
        ask = sim.unicast(src, dst, sim.now, read.nbytes(0, "payload"), read.payload(0, "payload"))
        yield sim.timeout_until(float(ask.t_arrive[0]))
        if not len(sim.delivered(ask)):
            return
        answer = sim.compute([Request("respond", dst, inbox=sim.inbox(ask, dst))])
        reply = sim.unicast(
            dst, src, answer.finish[0], answer.nbytes(0, "payload"), answer.payload(0, "payload")
        )
        yield sim.timeout_until(float(reply.t_arrive[0]))
        if not len(sim.delivered(reply)):
            return
        sim.compute([Request("apply", src, inbox=sim.inbox(reply, src))])

    def final(self, metrics: pd.DataFrame) -> Final:
        rows = network_rows(metrics, "consensus_error")
        return Final(
            {"consensus_error": float(rows["value"].iloc[-1])},
            {"consensus_error": "||x - mean|| / ||x(0) - mean|| at the end of the run"},
        )


# ---------------------------------------------------------------- kernels
def _read(state: GossipState, call: KernelCall) -> tuple[GossipState, Outputs]:
    return state, {"payload": Payloads.rows(state.x[call.idx].copy())}


def _respond(state: GossipState, call: KernelCall) -> tuple[GossipState, Outputs]:
    """``delta = (x_j - x_i) / 2`` back to the asker; ``x_j -= delta``."""
    assert call.inbox is not None
    delta = (state.x[call.idx] - _received(state, call)) / 2
    state.x[call.idx] -= delta
    return state, {"payload": Payloads.rows(delta)}


def _apply(state: GossipState, call: KernelCall) -> tuple[GossipState, Outputs]:
    assert call.inbox is not None
    state.x[call.idx] += _received(state, call)
    return state, {}


def _received(state: GossipState, call: KernelCall) -> np.ndarray:
    """Each device's message, one row each (a host given no device of a
    windowed call's request gets no rows, of no known shape when remote)."""
    assert call.inbox is not None
    return np.reshape(call.inbox.payload[call.inbox.row], state.x[call.idx].shape)


_KERNELS: dict[str, Kernel] = {
    "initial": initial_kernel,
    "read": _read,
    "respond": _respond,
    "apply": _apply,
    "measure": measure_kernel,
}
