"""The driver-side context an algorithm's protocol runs against.

A protocol is a SimPy process (a generator) that receives a
:class:`Simulation`. Through it, and only through it, the protocol

- reads the clock (``sim.env``) — the only clock;
- runs kernels on devices (:meth:`Simulation.compute`): the time a device
  spends is ``declared FLOPs / compute_flops``, never wall time;
- sends messages (:meth:`broadcast`, :meth:`unicast`) and reads what was
  delivered (:meth:`inbox`);
- records metrics (:meth:`record`, :meth:`record_nodes`), which the runner
  turns into ``metrics.parquet``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import simpy

from actors.dispatch import CallResult, Dispatcher, PayloadSource
from actors.host import Inbox, Outputs, Request
from netsim import rng as rngs
from netsim.network import MessageBatch, Network


class CostModel(Protocol):
    def flops(self, request: Request) -> np.ndarray:
        """FLOPs each device of ``request`` spends on it."""
        ...


@dataclass(frozen=True)
class Computation:
    """A dispatched call: its outputs and, per request, when each device's
    outputs are ready (requests of one call run one after another)."""

    result: CallResult
    finish: list[np.ndarray]

    def outputs(self, i: int = 0) -> Outputs:
        return self.result.outputs(i)


class DeviceLedger:
    """Per-device compute accounting."""

    def __init__(self, n: int) -> None:
        self.flops = np.zeros(n)
        self.busy_s = np.zeros(n)
        self.steps = 0  # device-kernel executions with a cost


class MetricLog:
    """Long-format metric rows: time, step, node (-1 = network), metric, value."""

    def __init__(self) -> None:
        self.time: list[float] = []
        self.step: list[int] = []
        self.node: list[int] = []
        self.metric: list[str] = []
        self.value: list[float] = []

    def add(self, time: float, step: int, node: int, metric: str, value: float) -> None:
        self.time.append(float(time))
        self.step.append(int(step))
        self.node.append(int(node))
        self.metric.append(metric)
        self.value.append(float(value))

    def extend(
        self, time: float, step: int, nodes: np.ndarray, metric: str, values: np.ndarray
    ) -> None:
        k = len(nodes)
        self.time.extend([float(time)] * k)
        self.step.extend([int(step)] * k)
        self.node.extend(np.asarray(nodes, dtype=np.int64).tolist())
        self.metric.extend([metric] * k)
        self.value.extend(np.asarray(values, dtype=float).tolist())


class Simulation:
    """Clock, network, devices and hosts of one run, as a protocol sees them."""

    def __init__(
        self,
        env: simpy.Environment,
        network: Network,
        dispatcher: Dispatcher,
        cost: CostModel,
        compute_flops: np.ndarray,
        *,
        seed: int,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        self.env = env
        self.network = network
        self.links = network.links
        self.n_nodes = network.links.n_nodes
        self.dispatcher = dispatcher
        self.cost = cost
        self.compute_flops = compute_flops  # changed in place by compute events
        self.nominal_compute_flops = compute_flops.copy()  # as the scenario gave them
        self.seed = seed
        self.ledger = DeviceLedger(self.n_nodes)
        self.metrics = MetricLog()
        self._progress = progress

    # ------------------------------------------------------------ state
    @property
    def now(self) -> float:
        return float(self.env.now)

    def live(self) -> np.ndarray:
        """Ids of the nodes that are up now."""
        return np.flatnonzero(self.network.node_up)

    def timeout_until(self, t: float) -> simpy.Timeout:
        """A timeout that fires at a time ``>= t`` (``now + (t - now)`` can round below ``t``)."""
        delay = max(0.0, t - self.now)
        while self.now + delay < t:
            delay = float(np.nextafter(delay, np.inf))
        return self.env.timeout(delay)

    def rng(self, purpose: str, *index: int) -> np.random.Generator:
        """A protocol-side random stream (e.g. gossip clocks), keyed by purpose."""
        return rngs.generator(self.seed, purpose, *index)

    # ------------------------------------------------------------ computing
    def compute(self, requests: Sequence[Request]) -> Computation:
        """Run ``requests`` on the hosts now (one call per host).

        A device's outputs of request ``i`` are ready at ``finish[i]``: now plus
        the FLOPs of this and its earlier requests in the call, over its budget.
        Only devices that are up may spend FLOPs.
        """
        now = self.now
        busy = np.zeros(self.n_nodes)
        finish = []
        for r in requests:
            flops = np.broadcast_to(np.asarray(self.cost.flops(r), dtype=float), r.devices.shape)
            spending = flops > 0
            if spending.any():
                if not np.all(self.network.node_up[r.devices[spending]]):
                    raise RuntimeError(
                        f"protocol error: kernel {r.kernel!r} on a device that is down"
                    )
                seconds = flops / self.compute_flops[r.devices]
                busy[r.devices] += seconds
                self.ledger.flops[r.devices] += flops
                self.ledger.busy_s[r.devices] += seconds
                self.ledger.steps += int(spending.sum())
            finish.append(now + busy[r.devices])
        return Computation(self.dispatcher.call(requests), finish)

    def spend(self, devices: np.ndarray, flops: np.ndarray | float) -> np.ndarray:
        """Charge ``flops`` of work starting now to ``devices`` (which must be up);
        returns each one's duration, ``flops / compute_flops``. For protocols whose
        devices start working at their own times (e.g. when a model arrives)."""
        devices = np.atleast_1d(np.asarray(devices, dtype=np.int64))
        flops = np.broadcast_to(np.asarray(flops, dtype=float), devices.shape)
        if not np.all(self.network.node_up[devices]):
            raise RuntimeError("protocol error: work charged to a device that is down")
        seconds = flops / self.compute_flops[devices]
        np.add.at(self.ledger.flops, devices, flops)
        np.add.at(self.ledger.busy_s, devices, seconds)
        self.ledger.steps += int(np.count_nonzero(flops))
        return seconds

    # ------------------------------------------------------------ messaging
    def broadcast(
        self,
        senders: np.ndarray,
        t_queue: np.ndarray | float,
        size: np.ndarray | float,
        payload: Any = None,
    ) -> MessageBatch:
        """Every sender broadcasts one message (``size`` bytes) queued at ``t_queue``."""
        batch = self.network.broadcast(self.now, senders, np.asarray(t_queue, dtype=float), size)
        batch.payload = payload
        return batch

    def unicast(
        self,
        src: np.ndarray,
        dst: np.ndarray,
        t_queue: np.ndarray | float,
        size: np.ndarray | float,
        payload: Any = None,
    ) -> MessageBatch:
        batch = self.network.unicast(self.now, src, dst, t_queue, size)
        batch.payload = payload
        return batch

    def delivered(self, batch: MessageBatch) -> np.ndarray:
        """Indices of ``batch``'s messages delivered by now."""
        return self.network.delivered(batch, self.now)

    def inbox(
        self,
        batch: MessageBatch | None,
        receivers: np.ndarray,
        payload: PayloadSource | np.ndarray,
    ) -> Inbox:
        """What ``receivers`` got from ``batch`` by now, as an :class:`Inbox`.

        ``payload`` holds the content of the batch's transmission ``i`` (for a
        broadcast, of its ``i``-th sender) at row ``i``: an array, or a
        :class:`PayloadSource` from :meth:`CallResult.payload`."""
        source = payload if isinstance(payload, PayloadSource) else PayloadSource(payload)
        n_recv = len(receivers)
        if batch is None:
            empty = np.zeros(0, dtype=np.int64)
            return Inbox(np.zeros(n_recv + 1, dtype=np.int64), empty, empty, empty, np.empty(0))
        msgs = self.delivered(batch)
        position = np.full(self.n_nodes, -1, dtype=np.int64)
        position[receivers] = np.arange(n_recv)
        pos = position[batch.dst[msgs]]
        keep = pos >= 0
        msgs, pos = msgs[keep], pos[keep]
        if len(pos) > 1 and np.any(pos[1:] < pos[:-1]):
            order = np.argsort(pos, kind="stable")
            msgs, pos = msgs[order], pos[order]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(pos, minlength=n_recv))])
        rows = batch.tx[msgs] if source.row_of is None else source.row_of[batch.tx[msgs]]
        return Inbox(indptr, batch.src[msgs], batch.link[msgs], rows, source.data)

    # ------------------------------------------------------------ metrics
    def record(self, metric: str, value: float, step: int, node: int = -1) -> None:
        self.metrics.add(self.now, step, node, metric, value)

    def record_nodes(
        self, metric: str, values: np.ndarray, step: int, nodes: np.ndarray | None = None
    ) -> None:
        nodes = np.arange(self.n_nodes) if nodes is None else nodes
        self.metrics.extend(self.now, step, nodes, metric, values)

    def progress(self, fraction: float) -> None:
        """Tell the runner how far the protocol is (0..1)."""
        if self._progress is not None:
            self._progress(fraction)
