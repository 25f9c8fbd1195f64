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

A node's message is its step's output ``payload``
(:class:`~netsim.kernel.Payloads`): its size is the payload's encoded size,
and its content stays on the hosts until the receivers' next step. A step
that reports ``reported_flops`` (encoding whose cost depends on the data) has
that work queued after it, and sends when it is done. An algorithm whose
steps never report it (``reports_flops = False``) and whose program says its
payloads' sizes in advance (``payload_nbytes``) sends each round's messages
without waiting for the hosts: the driver reads a round's outputs only when
it records them, after sending the next round, so that its own work
overlaps the hosts'.

Nodes that are down skip the round. The period is given, or chosen as the
smallest that lets every message of a failure-free round arrive in time
(computed from the device budgets, bandwidths and latencies and the sizes of
the first messages sent, plus a guard of one part per million against
rounding), from the parameters the scenario gives, before any failure or
parameter event.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from netsim.dispatch import PayloadSource, stack_sources
from netsim.kernel import Request

if TYPE_CHECKING:
    from netsim.messages import MessageBatch
    from netsim.simulation import Computation, Simulation

PERIOD_GUARD = 1e-6


class RoundAlgorithm(Protocol):
    """What :func:`synchronous_rounds` needs from an algorithm."""

    rounds: int
    period_s: float | None
    # optional: ``reports_flops`` (default True); False: steps report no
    # ``reported_flops``, so sending needs no outputs of the step
    observed: tuple[str, ...]  # per-node outputs to record, from every node each round
    observed_payloads: tuple[str, ...]  # per-node payloads to measure, left on the hosts

    @property
    def cooperative(self) -> bool: ...

    def start_request(self, live: np.ndarray) -> Request: ...

    def step_request(self, r: int, live: np.ndarray, inbox: Any) -> Request: ...

    def measure_request(self, nodes: np.ndarray) -> Request: ...

    def step_flops(self, heard: np.ndarray) -> np.ndarray: ...

    def record(
        self,
        sim: Simulation,
        step: int,
        time: float,
        observed: dict[str, np.ndarray],
        payloads: dict[str, PayloadSource],
    ) -> None: ...


def auto_period(sim: Simulation, algo: RoundAlgorithm, sizes: np.ndarray) -> float:
    """Smallest period in which every message of a failure-free round arrives,
    from the scenario's parameters (before any failure or parameter event);
    ``sizes[k]``: bytes of node ``k``'s message."""
    links, network = sim.links, sim.network
    compute = algo.step_flops(links.degree_in()) / sim.devices.nominal_compute_flops
    if not algo.cooperative or len(links) == 0:
        return float(compute.max()) * (1 + PERIOD_GUARD)
    send_done = compute + sizes / network.nominal_broadcast_rate
    arrival = send_done[links.src] + network.nominal_latency_s
    return float(max(arrival.max(), compute.max())) * (1 + PERIOD_GUARD)


def synchronous_rounds(sim: Simulation, algo: RoundAlgorithm) -> Generator[Any, Any, None]:
    """Run ``algo.rounds`` rounds. Each round, ``algo.record`` gets the outputs
    named by ``algo.observed`` for every node (down nodes are measured too)."""
    all_nodes = np.arange(sim.n_nodes)
    live = sim.live()
    comp = sim.compute([algo.start_request(live), algo.measure_request(all_nodes)])
    batch = _send(sim, algo, live, comp)
    period = algo.period_s
    if period is None:  # every node's message as large as the largest of the first round's
        largest = np.max(comp.nbytes(0, "payload"), initial=0) if algo.cooperative else 0
        period = auto_period(sim, algo, np.full(sim.n_nodes, float(largest)))
    if not period > 0:
        raise ValueError(f"round period must be > 0, got {period!r}")
    pending: tuple[int, float, Computation, np.ndarray, np.ndarray | None]
    pending = (0, sim.now, comp, live, None)
    for r in range(1, algo.rounds + 1):
        yield sim.env.timeout(period)
        late = len(sim.network.in_flight(batch, sim.now)) if batch is not None else 0
        live = sim.live()
        down = np.flatnonzero(~sim.network.node_up)
        inbox = sim.inbox(batch, live)
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


def _send(
    sim: Simulation, algo: RoundAlgorithm, live: np.ndarray, comp: Computation
) -> MessageBatch | None:
    """Each live node broadcasts its step's payload when its step (and the
    encoding it reported, if any) is done."""
    if not algo.cooperative:
        return None
    ready = comp.finish[0]
    if getattr(algo, "reports_flops", True):
        out = comp.outputs(0)
        if "reported_flops" in out and len(live):
            ready = sim.work(live, out["reported_flops"])
    return sim.broadcast(live, ready, comp.nbytes(0, "payload"), comp.payload(0, "payload"))


def _record(sim: Simulation, algo: RoundAlgorithm, pending: tuple[Any, ...]) -> None:
    """Read a round's outputs (awaiting them now) and record what it observed."""
    step, time, comp, live, down = pending
    out = comp.outputs(0)
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
    payloads = {}
    for key in algo.observed_payloads:  # row k: node k's, wherever it was computed
        if step == 0:
            payloads[key] = comp.payload(1, key)
            continue
        where: dict[int, tuple[PayloadSource, int]] = {}
        for request, nodes in ((0, live), (1, down)):
            if nodes is not None and len(nodes):
                src = comp.payload(request, key)
                where.update((k, (src, i)) for i, k in enumerate(nodes.tolist()))
        payloads[key] = stack_sources([where[k] for k in range(sim.n_nodes)])
    algo.record(sim, step, time, observed, payloads)
