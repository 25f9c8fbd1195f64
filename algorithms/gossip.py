"""Randomized (asynchronous) gossip averaging on Poisson clocks
(Boyd, Ghosh, Prabhakar, Shah, "Randomized gossip algorithms", 2006).

Each node's clock ticks at the times of a Poisson process of ``rate`` per
second (its own stream). At a tick, node ``i`` (if up) picks a neighbour ``j``
uniformly and sends it ``x_i``. On arrival ``j`` replies with its current
``x_j`` and sets ``x_j <- (x_j + x_i) / 2``; when the reply arrives ``i`` sets
``x_i <- x_i + (x_j - x_i_sent) / 2``. Each exchange moves an equal and opposite
amount between the two nodes, so the sum — hence the mean — is preserved
exactly even when exchanges overlap; a lost reply breaks that, as it would
on a real network.

One iteration is ``1 / rate`` seconds (every node ticks once on average);
``consensus_error`` is recorded each iteration. Costs: ``2 dim`` FLOPs to
answer, ``3 dim`` to apply the reply.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from actors.host import HostSetup, Kernel, KernelCall, Outputs, Request
from algorithms.base import Final, network_rows
from algorithms.consensus import initial_kernel, initial_values, measure_kernel, reset_kernel
from netsim import checks

if TYPE_CHECKING:
    from netsim.simulation import Simulation


@dataclass
class GossipState:
    x: np.ndarray
    x0: np.ndarray


@dataclass(frozen=True)
class RandomizedGossip:
    """Pairwise gossip averaging for ``iterations / rate`` simulated seconds."""

    iterations: int = 100
    dim: int = 1
    rate: float = 1.0

    name: ClassVar[str] = "gossip"
    needs_connected: ClassVar[bool] = True
    node_attributes: ClassVar[tuple[str, ...]] = ()
    combination: ClassVar[None] = None

    def __post_init__(self) -> None:
        checks.positive_int("iterations", self.iterations)
        checks.positive_int("dim", self.dim)
        checks.number("rate", self.rate, low=0, low_open=True)

    @property
    def payload_bytes(self) -> int:
        return 8 * self.dim

    # ------------------------------------------------------------ host side
    def init_state(self, setup: HostSetup, rngs_: list[np.random.Generator]) -> GossipState:
        x0 = initial_values(setup.seed, setup.devices, self.dim)
        return GossipState(x0.copy(), x0)

    def kernel(self, name: str) -> Kernel:
        return _KERNELS[name]

    def flops(self, request: Request) -> np.ndarray:
        per_device = {"respond": 2.0 * self.dim, "apply": 3.0 * self.dim}.get(request.kernel, 0.0)
        return np.full(len(request.devices), per_device)

    # ------------------------------------------------------------ driver side
    def protocol(self, sim: Simulation) -> Generator[Any, Any, None]:
        all_nodes = np.arange(sim.n_nodes)
        x0 = sim.compute([Request("initial", all_nodes)]).outputs(0)["x"]
        mean = x0.mean(axis=0)
        norm0 = float(np.linalg.norm(x0 - mean)) or 1.0
        for k in range(sim.n_nodes):
            sim.env.process(self._clock(sim, k))
        for step in range(self.iterations + 1):
            if step:
                yield sim.env.timeout(1.0 / self.rate)
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
        read = sim.compute([Request("read", np.array([i]))])
        ask = sim.unicast(np.array([i]), np.array([j]), sim.now, self.payload_bytes)
        yield sim.timeout_until(float(ask.t_arrive[0]))
        if not len(sim.delivered(ask)):
            return
        sent = read.outputs(0)["payload"]
        answer = sim.compute([Request("respond", np.array([j]), inputs={"incoming": sent})])
        reply = sim.unicast(np.array([j]), np.array([i]), answer.finish[0], self.payload_bytes)
        yield sim.timeout_until(float(reply.t_arrive[0]))
        if not len(sim.delivered(reply)):
            return
        inputs = {"sent": sent, "reply": answer.outputs(0)["payload"]}
        sim.compute([Request("apply", np.array([i]), inputs=inputs)])

    def final(self, metrics: pd.DataFrame) -> Final:
        rows = network_rows(metrics, "consensus_error")
        return Final(
            {"consensus_error": float(rows["value"].iloc[-1])},
            {"consensus_error": "||x - mean|| / ||x(0) - mean|| at the end of the run"},
        )


# ---------------------------------------------------------------- kernels
def _read(state: GossipState, call: KernelCall) -> tuple[GossipState, Outputs]:
    return state, {"payload": state.x[call.idx].copy()}


def _respond(state: GossipState, call: KernelCall) -> tuple[GossipState, Outputs]:
    old = state.x[call.idx].copy()
    state.x[call.idx] = (old + call.inputs["incoming"]) / 2
    return state, {"payload": old}


def _apply(state: GossipState, call: KernelCall) -> tuple[GossipState, Outputs]:
    state.x[call.idx] += (call.inputs["reply"] - call.inputs["sent"]) / 2
    return state, {}


_KERNELS: dict[str, Kernel] = {
    "initial": initial_kernel,
    "read": _read,
    "respond": _respond,
    "apply": _apply,
    "measure": measure_kernel,
    "reset": reset_kernel,
}
