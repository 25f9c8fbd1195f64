"""Synchronous rounds on a common clock: the protocol of consensus, diffusion
and every other "compute, broadcast, combine" algorithm.

Round ``r`` starts at ``T_r = r * period`` on every node that is up:

1. at ``T_r`` the node combines what it heard in round ``r-1`` (messages that
   arrived by ``T_r``; later ones are late and unused) and runs its local
   step — one host call per host for all nodes;
2. when its step is done (``T_r + FLOPs / compute_flops``) it broadcasts the
   result to its neighbours.

Each round records ``messages_late``: messages of the previous round still on
their way at ``T_r`` (they arrive, but too late to be combined).

Nodes that are down skip the round. The period is given, or chosen as the
smallest that lets every message of a failure-free round arrive in time
(computed from the device budgets, bandwidths and latencies, plus a guard of
one part per million against rounding), from the parameters the scenario
gives, before any failure or parameter event.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from actors.host import Request

if TYPE_CHECKING:
    from netsim.simulation import Computation, Simulation

PERIOD_GUARD = 1e-6


class RoundAlgorithm(Protocol):
    """What :func:`synchronous_rounds` needs from an algorithm."""

    rounds: int
    period_s: float | None
    observed: tuple[str, ...]  # per-node outputs to record, from every node each round

    @property
    def cooperative(self) -> bool: ...

    @property
    def payload_bytes(self) -> int: ...

    def start_request(self, live: np.ndarray) -> Request: ...

    def step_request(self, r: int, live: np.ndarray, inbox: Any) -> Request: ...

    def measure_request(self, nodes: np.ndarray) -> Request: ...

    def step_flops(self, heard: np.ndarray) -> np.ndarray: ...

    def record(
        self, sim: Simulation, step: int, time: float, observed: dict[str, np.ndarray]
    ) -> None: ...


def auto_period(sim: Simulation, algo: RoundAlgorithm) -> float:
    """Smallest period in which every message of a failure-free round arrives,
    from the scenario's parameters (before any failure or parameter event)."""
    links, network = sim.links, sim.network
    compute = algo.step_flops(links.degree_in()) / sim.nominal_compute_flops
    if not algo.cooperative or len(links) == 0:
        return float(compute.max()) * (1 + PERIOD_GUARD)
    send_done = compute + algo.payload_bytes / network.nominal_broadcast_rate
    arrival = send_done[links.src] + network.nominal_latency_s
    return float(max(arrival.max(), compute.max())) * (1 + PERIOD_GUARD)


def synchronous_rounds(sim: Simulation, algo: RoundAlgorithm) -> Generator[Any, Any, None]:
    """Run ``algo.rounds`` rounds. Each round, ``algo.record`` gets the outputs
    named by ``algo.observed`` for every node (down nodes are measured too)."""
    period = algo.period_s if algo.period_s is not None else auto_period(sim, algo)
    if not period > 0:
        raise ValueError(f"round period must be > 0, got {period!r}")
    all_nodes = np.arange(sim.n_nodes)
    live = sim.live()
    comp = sim.compute([algo.start_request(live), algo.measure_request(all_nodes)])
    batch = _send(sim, algo, live, comp)
    pending: tuple[int, float, Computation, np.ndarray, np.ndarray | None]
    pending = (0, sim.now, comp, live, None)
    for r in range(1, algo.rounds + 1):
        yield sim.env.timeout(period)
        late = len(sim.network.in_flight(batch, sim.now)) if algo.cooperative else 0
        live = sim.live()
        down = np.flatnonzero(~sim.network.node_up)
        sent = comp.result.payload(0, "payload")  # previous round's messages, by reference
        inbox = sim.inbox(batch if algo.cooperative else None, live, sent)
        requests = [algo.step_request(r, live, inbox)]
        if len(down):
            requests.append(algo.measure_request(down))
        comp = sim.compute(requests)
        batch = _send(sim, algo, live, comp) if r < algo.rounds else None
        # read the previous round's outputs only now, while the hosts work on this one
        _record(sim, algo, pending)
        if algo.cooperative:
            sim.metrics.add(sim.now, r, -1, "messages_late", late)
        pending = (r, sim.now, comp, live, down if len(down) else None)
        sim.progress(r / algo.rounds)
    _record(sim, algo, pending)


def _send(sim: Simulation, algo: RoundAlgorithm, live: np.ndarray, comp: Computation) -> Any:
    if not algo.cooperative:
        return None
    return sim.broadcast(live, comp.finish[0], algo.payload_bytes)


def _record(sim: Simulation, algo: RoundAlgorithm, pending: tuple[Any, ...]) -> None:
    """Read a round's outputs (awaiting them now) and record what it observed."""
    step, time, comp, live, down = pending
    out = comp.outputs(0)
    payload: np.ndarray = out["payload"]
    if len(payload) and payload[0].nbytes != algo.payload_bytes:
        raise RuntimeError(
            f"declared message size {algo.payload_bytes} B, payload is {payload[0].nbytes} B"
        )
    observed = {}
    for key in algo.observed:
        if step == 0:  # everybody was measured
            observed[key] = np.asarray(comp.outputs(1)[key])
            continue
        parts = [(live, np.asarray(out[key]))]
        if down is not None:
            parts.append((down, np.asarray(comp.outputs(1)[key])))
        rows, sample = next((r, a) for r, a in parts if len(r))  # shape from a part with rows
        full = np.empty((sim.n_nodes, *sample.shape[1:]), dtype=sample.dtype)
        for rows, part in parts:
            if len(rows):
                full[rows] = part
        observed[key] = full
    algo.record(sim, step, time, observed)
