"""The driver-side context an algorithm's protocol runs against.

A protocol is a SimPy process (a generator) that receives a
:class:`Simulation`. Through it, and only through it, the protocol

- reads the clock (``sim.env``) — the only clock;
- runs kernels on devices (:meth:`Simulation.compute`): each device runs its
  jobs one at a time (:mod:`netsim.devices`), each lasting its declared
  FLOPs over the device's budget, never wall time;
- sends messages (:meth:`broadcast`, :meth:`unicast`) whose size is that of
  their encoded payload, and reads what was delivered (:meth:`inbox`);
- records metrics (:meth:`record`, :meth:`record_nodes`), which the runner
  turns into ``metrics.parquet``, and tables of its own (:meth:`add_table`,
  e.g. one row per inference request), written as ``<name>.parquet``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import simpy

from netsim import rng as rngs
from netsim.content_cache import ContentCache, Interned, frozen, read_only
from netsim.devices import Devices
from netsim.dispatch import CallResult, Dispatcher, PayloadSource
from netsim.kernel import NBYTES, HostProgram, Inbox, Request
from netsim.messages import CANCELLED, MessageBatch
from netsim.metric_log import MetricLog
from netsim.network import Network
from netsim.outputs import check_terminated
from netsim.results import RESERVED_TABLES


@dataclass(frozen=True)
class Computation:
    """A dispatched call: its outputs and, per request, when each device's
    outputs are ready (each device runs its requests one after another).

    ``known[i]``: outputs of request ``i`` its program says in advance
    (payload sizes as ``key + ".nbytes"``, ``reported_flops``;
    :meth:`Simulation.compute`): ``nbytes`` and ``reported_flops`` answer
    them without waiting for the call, and the hosts check the kernels'
    outputs against them."""

    result: CallResult
    finish: list[np.ndarray]
    known: list[dict[str, np.ndarray]] = field(default_factory=list)

    def outputs(self, i: int = 0) -> dict[str, np.ndarray]:
        return self.result.outputs(i)

    def _known(self, i: int, key: str) -> np.ndarray | None:
        return self.known[i].get(key) if i < len(self.known) else None

    def nbytes(self, i: int, key: str) -> np.ndarray:
        """Encoded size of each device's payload ``key`` of request ``i``."""
        known = self._known(i, key + NBYTES)
        return known if known is not None else self.result.nbytes(i, key)

    def reported_flops(self, i: int = 0) -> np.ndarray:
        """The FLOPs each device's kernel of request ``i`` reports doing
        beyond its cost (e.g. encoding), for :meth:`Simulation.work`."""
        known = self._known(i, "reported_flops")
        return known if known is not None else self.outputs(i)["reported_flops"]

    def payload(self, i: int, key: str) -> PayloadSource:
        """Payload ``key`` of request ``i``, as message contents (left on the hosts)."""
        return self.result.payload(i, key)


class Simulation:
    """Clock, network, devices and hosts of one run, as a protocol sees them."""

    def __init__(
        self,
        env: simpy.Environment,
        network: Network,
        devices: Devices,
        dispatcher: Dispatcher,
        program: HostProgram,
        *,
        seed: int,
        nodes: Mapping[str, np.ndarray] | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        self.env = env
        self.nodes = nodes or {}  # node attributes by name, as arrays over all nodes
        self.network = network
        self.devices = devices
        self.links = network.links
        self.n_nodes = network.links.n_nodes
        self.dispatcher = dispatcher
        self.program = program
        self.seed = seed
        self.metrics = MetricLog()
        self.tables: dict[str, pd.DataFrame] = {}
        self._progress = progress
        self.messages_counted = 0  # messages sent (by a node that was up) ...
        self.messages_crossing = 0  # ... and those of them between devices on different hosts
        # index arrays equal to the last ones handed out come back as those
        # (frozen): caches down the line know them by identity
        self._interned = Interned()

    # ------------------------------------------------------------ state
    @property
    def now(self) -> float:
        return float(self.env.now)

    def live(self) -> np.ndarray:
        """Ids of the nodes that are up now (read-only: while nobody fails or
        recovers, the same array every time)."""
        return self._interned("live", np.flatnonzero(self.network.node_up), fresh=True)

    def is_up(self, node: int) -> bool:
        return bool(self.network.node_up[node])

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
    def compute(
        self, requests: Sequence[Request], at: Sequence[np.ndarray | None] | None = None
    ) -> Computation:
        """Run ``requests`` on the hosts now (one call per host).

        Each device's part of each request is a job on its compute queue,
        of the FLOPs the program's cost model gives; ``finish[i]`` says when
        each device's outputs of request ``i`` are ready. Only devices that
        are up may be given work. A program may say its payloads' sizes
        before they are computed: ``payload_nbytes(request)`` gives them by
        key (``{}``: no payloads; ``None``: not known in advance), and the
        FLOPs its kernel will report: ``reported_flops(request)`` (``None``:
        not known), so that the protocol can go on without waiting for the
        hosts (which check the kernels' outputs against them).

        ``at[i]`` (optional, per device, ``>= now``): the jobs of request ``i``
        arrive then rather than now (see :meth:`Devices.run`), for a protocol
        that processes events ahead of the clock, knowing that nothing the
        kernels read or write changes in between."""
        at = [None] * len(requests) if at is None else at
        finish = [
            self.devices.run(r.devices, np.asarray(self.program.cost(r), dtype=float), when)
            for r, when in zip(requests, at, strict=True)
        ]
        known = [self._known(r) for r in requests]
        if any(known):
            requests = [
                replace(r, expect=k) if k else r for r, k in zip(requests, known, strict=True)
            ]
        return Computation(self.dispatcher.call(requests), finish, known)

    def _known(self, request: Request) -> dict[str, np.ndarray]:
        """Outputs of ``request`` its program says before it runs (optional
        ``payload_nbytes`` and ``reported_flops``)."""
        known: dict[str, np.ndarray] = {}
        sizes = getattr(self.program, "payload_nbytes", None)
        for key, value in ((sizes(request) if sizes is not None else None) or {}).items():
            known[key + NBYTES] = self._interned(("sizes", key), np.asarray(value, dtype=np.int64))
        flops = getattr(self.program, "reported_flops", None)
        value = flops(request) if flops is not None else None
        if value is not None:
            known["reported_flops"] = np.asarray(value, dtype=float)
        return known

    def work(self, devices: np.ndarray | int, flops: np.ndarray | float) -> np.ndarray:
        """Queue ``flops`` of work now on each of ``devices`` that a kernel did
        without the driver knowing its cost in advance (e.g. encoding, whose
        FLOPs the kernel reported); when each is done."""
        return self.devices.run(np.atleast_1d(np.asarray(devices, dtype=np.int64)), flops)

    # ------------------------------------------------------------ messaging
    def broadcast(
        self,
        senders: np.ndarray,
        t_queue: np.ndarray | float,
        size: np.ndarray | float,
        payload: PayloadSource | None = None,
    ) -> MessageBatch:
        """Every sender broadcasts one message of ``size`` bytes (its encoded
        payload's) queued at ``t_queue``; ``payload`` holds sender ``i``'s
        contents at row ``i``."""
        batch = self.network.broadcast(self.now, senders, np.asarray(t_queue, dtype=float), size)
        batch.payload = payload
        self._count_crossing(batch)
        return batch

    def unicast(
        self,
        src: np.ndarray,
        dst: np.ndarray,
        t_queue: np.ndarray | float,
        size: np.ndarray | float,
        payload: PayloadSource | None = None,
        *,
        draw_loss: bool = True,
    ) -> MessageBatch:
        """Messages ``src[i] -> dst[i]`` of ``size[i]`` bytes; ``payload`` holds
        message ``i``'s contents at row ``i``. ``draw_loss=False``: the loss
        draws come later, from :meth:`Network.draw_losses`."""
        batch = self.network.unicast(self.now, src, dst, t_queue, size, draw_loss=draw_loss)
        batch.payload = payload
        self._count_crossing(batch)
        return batch

    def _count_crossing(self, batch: MessageBatch) -> None:
        """Count the batch's messages, and those whose contents cross hosts."""
        host = self.dispatcher.backend.assignment
        sent = batch.fate != CANCELLED
        counted = int(np.count_nonzero(sent))
        self.messages_counted += counted
        if counted == len(batch) and frozen(batch.src) and frozen(batch.dst):
            # every link, round after round: counted once
            self.messages_crossing += _CROSSING.get(
                "crossing", (host, batch.src, batch.dst), lambda: _crossing(host, batch)
            )
            return
        self.messages_crossing += _crossing(host, batch, sent)

    def delivered(self, batch: MessageBatch) -> np.ndarray:
        """Indices of ``batch``'s messages delivered by now."""
        return self.network.delivered(batch, self.now)

    def inbox(self, batch: MessageBatch | None, receivers: np.ndarray) -> Inbox:
        """What ``receivers`` got from ``batch`` by now, as an :class:`Inbox`
        whose contents are the batch's payload (left on the hosts)."""
        if batch is None:
            empty = np.zeros(0, dtype=np.int64)
            indptr = np.zeros(len(receivers) + 1, dtype=np.int64)
            return Inbox(indptr, empty, empty, empty, np.empty(0))
        source: PayloadSource = batch.payload
        receivers = np.asarray(receivers, dtype=np.int64)
        msgs = self.delivered(batch)
        indices = [receivers, msgs, batch.dst, batch.src, batch.link, batch.tx]
        if source.row_of is not None:
            indices.append(source.row_of)
        if len(batch) < SMALL_BATCH or not frozen(batch.dst):
            # a few messages (gossip), or not a broadcast of every node (a
            # round under churn): computed, not kept
            indptr, sender, link, row = _inbox(self.n_nodes, *indices)
            return Inbox(indptr, sender, link, row, source.data)
        # every node's messages to the same receivers round after round: the
        # same (frozen) index arrays, computed once
        indices[1] = self._interned(("inbox", "delivered"), msgs, fresh=True)
        indptr, sender, link, row = _INBOXES.get(
            self.n_nodes, indices, lambda: read_only(*_inbox(self.n_nodes, *indices))
        )
        return Inbox(indptr, sender, link, row, source.data)

    # ------------------------------------------------------------ metrics
    def record(self, metric: str, value: float, step: int, node: int = -1) -> None:
        self.metrics.add(self.now, step, node, metric, value)

    def record_nodes(
        self, metric: str, values: np.ndarray, step: int, nodes: np.ndarray | None = None
    ) -> None:
        nodes = np.arange(self.n_nodes) if nodes is None else nodes
        self.metrics.extend(self.now, step, nodes, metric, values)

    def add_table(self, name: str, frame: pd.DataFrame) -> None:
        """A table of the run's own, written as ``<name>.parquet`` beside the metrics."""
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ValueError(f"table name {name!r}: expected lower-case letters, digits, _")
        if name in RESERVED_TABLES:
            raise ValueError(f"table name {name!r}: reserved for the run's own files")
        self.tables[name] = frame

    def progress(self, fraction: float) -> None:
        """Tell the runner how far the protocol is (0..1); a run whose
        SIGTERM was lost ends here (:func:`netsim.outputs.check_terminated`)."""
        check_terminated()
        if self._progress is not None:
            self._progress(fraction)


def _crossing(host: np.ndarray, batch: MessageBatch, sent: np.ndarray | None = None) -> int:
    """How many of ``batch``'s messages (of those ``sent``) go between hosts."""
    across = host[batch.src] != host[batch.dst]
    return int(np.count_nonzero(across if sent is None else across & sent))


_CROSSING: ContentCache[int] = ContentCache()


def _inbox(
    n_nodes: int,
    receivers: np.ndarray,
    msgs: np.ndarray,
    dst: np.ndarray,
    src: np.ndarray,
    link: np.ndarray,
    tx: np.ndarray,
    row_of: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    """``indptr, sender, link, row`` of the inbox of ``receivers`` from the
    delivered messages ``msgs`` of a batch (:meth:`Simulation.inbox`)."""
    pos = _positions(receivers, dst[msgs], n_nodes)
    keep = pos >= 0
    msgs, pos = msgs[keep], pos[keep]
    if len(pos) > 1 and np.any(pos[1:] < pos[:-1]):
        order = np.argsort(pos, kind="stable")
        msgs, pos = msgs[order], pos[order]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(pos, minlength=len(receivers)))])
    rows = tx[msgs] if row_of is None else row_of[tx[msgs]]
    return indptr, src[msgs], link[msgs], rows


_INBOXES: ContentCache[tuple[np.ndarray, ...]] = ContentCache()
SMALL_BATCH = 64  # messages; fewer: an inbox is computed each time, not kept


def _positions(receivers: np.ndarray, nodes: np.ndarray, n_nodes: int) -> np.ndarray:
    """Position of each of ``nodes`` in ``receivers`` (distinct), ``-1`` where
    absent: by a table over all nodes, or by binary search when there are few
    receivers (O(k log k), not O(n_nodes), for one message)."""
    receivers = np.asarray(receivers, dtype=np.int64)
    if len(receivers) * 16 >= n_nodes:
        position = np.full(n_nodes, -1, dtype=np.int64)
        position[receivers] = np.arange(len(receivers))
        return position[nodes]
    order = np.argsort(receivers, kind="stable")
    ranked = receivers[order]
    at = np.minimum(np.searchsorted(ranked, nodes), max(len(ranked) - 1, 0))
    found = (ranked[at] == nodes) if len(ranked) else np.zeros(len(nodes), dtype=bool)
    return np.where(found, order[at] if len(ranked) else -1, -1)
