"""Failures: how a scenario says devices and links fail, and the driver-side
injector that applies failures on the virtual clock and records them.

Sources, any combination: stochastic churn (exponential up and down times),
scripted events, and a trace file (:mod:`netsim.traces`). Replaying a run's
``failures.csv`` with ``--trace`` replaces the scenario's own failures.

Every applied event is recorded; an event that changes nothing (``down`` on a
node that is already down) is skipped and not recorded. Failure events are
scheduled with SimPy's URGENT priority, so at equal times they apply before the
algorithm's own events, in the original run and in its replay alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import simpy
from simpy.core import URGENT

from netsim import rng as rngs
from netsim.devices import Devices
from netsim.errors import InputError
from netsim.link_table import LinkTable
from netsim.traces import FailureEvent, check_event, link, node, read_trace


@dataclass(frozen=True)
class Churn:
    """Nodes (or links) alternate up and down for exponential times with means
    ``mtbf_s`` (up) and ``mttr_s`` (down), starting up. ``fraction`` of them churn,
    chosen at random from the run seed, among ``nodes`` (default: all)."""

    mtbf_s: float
    mttr_s: float
    fraction: float = 1.0
    links: bool = False
    nodes: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("mtbf_s", "mttr_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0 and np.isfinite(value)):
                raise InputError(f"churn {name}: expected a finite number > 0, got {value!r}")
        if not 0 <= self.fraction <= 1:
            raise InputError(f"churn fraction: expected a number in [0, 1], got {self.fraction!r}")

    @classmethod
    def from_downtime(
        cls,
        downtime: float,
        mttr_s: float,
        fraction: float = 1.0,
        nodes: tuple[int, ...] | None = None,
    ) -> Churn | None:
        """Churn where each churning node is down ``downtime`` of the time on average
        (``0`` gives ``None``: no churn)."""
        if not 0 <= downtime < 1:
            raise InputError(
                f"failures: expected a fraction of time down in [0, 1), got {downtime!r}"
            )
        if downtime == 0:
            return None
        if not (isinstance(mttr_s, int | float) and math.isfinite(mttr_s) and mttr_s > 0):
            raise InputError(f"mttr_s: expected a finite number of seconds > 0, got {mttr_s!r}")
        mtbf = mttr_s * (1 - downtime) / downtime
        if not math.isfinite(mtbf):
            raise InputError(
                f"failures: a fraction of time down of {downtime!r} is too small to simulate "
                f"(a mean time between failures of {mtbf!r} s); use 0 for no failures"
            )
        return cls(mtbf_s=mtbf, mttr_s=mttr_s, fraction=fraction, nodes=nodes)


@dataclass(frozen=True)
class Failures:
    """How devices and links fail in a scenario."""

    churn: Churn | None = None
    events: tuple[FailureEvent, ...] = ()
    trace: str | Path | None = None
    on_recover: Literal["resume", "restart"] = "resume"

    def __post_init__(self) -> None:
        if self.on_recover not in ("resume", "restart"):
            raise InputError(
                f"failures on_recover: expected 'resume' or 'restart', got {self.on_recover!r}"
            )
        for ev in self.events:
            check_event(ev)

    def replayed_from(self, trace: str | Path) -> Failures:
        """These failures with churn and scripted events replaced by ``trace``."""
        return replace(self, churn=None, events=(), trace=trace)


class UrgentTimeout(simpy.Event):
    """A timeout that fires before ordinary events scheduled for the same time."""

    def __init__(self, env: simpy.Environment, delay: float) -> None:
        super().__init__(env)
        self._ok = True
        self._value = None
        env.schedule(self, URGENT, delay)


def urgent_at(env: simpy.Environment, t: float) -> UrgentTimeout:
    """An :class:`UrgentTimeout` that fires at a time ``>= t`` (``now + (t - now)``
    can round below ``t``)."""
    delay = max(0.0, t - env.now)
    while env.now + delay < t:
        delay = float(np.nextafter(delay, np.inf))
    return UrgentTimeout(env, delay)


@dataclass
class FailureLog:
    """What happened, in the order it happened."""

    events: list[FailureEvent] = field(default_factory=list)


class FailureInjector:
    """Applies failures to the devices, the network and the device budgets on
    the clock, and records them."""

    def __init__(
        self,
        env: simpy.Environment,
        devices: Devices,
        graph_edges: Sequence[tuple[int, int]],
        *,
        seed: int,
        failures: Failures,
        on_node_change: Callable[[int, bool], None] | None = None,
    ) -> None:
        self.env = env
        self.devices = devices
        self.network = devices.network
        self.failures = failures
        self.seed = seed
        self.log = FailureLog()
        self._edges = list(graph_edges)
        self._links: LinkTable = self.network.links
        self._on_node_change = on_node_change
        self.trace_nodes = 0  # nodes the trace names (set by scripted_events)

    # ------------------------------------------------------------ validation
    def scripted_events(self) -> list[FailureEvent]:
        """The scenario's events and the trace's, validated against the topology.

        A trace may name fewer nodes than the topology has (the others never
        fail: see :attr:`trace_nodes`), not more."""
        events = list(self.failures.events)
        trace = read_trace(self.failures.trace) if self.failures.trace is not None else []
        named = {ev.ids[0] for ev in trace if ev.kind == "node"}
        self.trace_nodes = len(named)
        n = self._links.n_nodes
        links_named = any(ev.kind == "link" for ev in events + trace)
        edge_set = {frozenset(e) for e in self._edges} if links_named else set()
        for ev in events + trace:
            ids = ev.ids
            if ev.kind == "node" and ids[0] >= n:
                many = (
                    f"; the trace names {len(named)} nodes: map it onto at most {n}"
                    if ev in trace and len(named) > n
                    else ""
                )
                raise InputError(
                    f"{ev.where()}target: {ev.target} does not exist "
                    f"(the topology has nodes 0..{n - 1}{many})"
                )
            if ev.kind == "link" and frozenset(ids) not in edge_set:
                raise InputError(f"{ev.where()}target: {ev.target} is not a link of the topology")
        return sorted(events + trace, key=lambda e: e.time)

    # ------------------------------------------------------------ running
    def start(self, scripted: list[FailureEvent] | None = None) -> None:
        """Apply events at t = 0 now and schedule the rest; start churn.

        ``scripted`` are the events of :meth:`scripted_events` (read again if not
        given). Call before the algorithm's process starts, so that t = 0
        failures are in place when it begins."""
        if scripted is None:
            scripted = self.scripted_events()
        for ev in scripted:
            if ev.time <= self.env.now:
                self.apply(ev)
        later = [ev for ev in scripted if ev.time > self.env.now]
        if later:
            self.env.process(self._scripted(later))
        churn = self.failures.churn
        if churn is not None and churn.fraction > 0:
            count = len(self._edges) if churn.links else self._links.n_nodes
            chosen = rngs.generator(self.seed, "churn-select").random(count) < churn.fraction
            if churn.fraction == 1:
                chosen[:] = True
            if churn.nodes is not None and not churn.links:
                among = np.zeros(count, dtype=bool)
                among[[k for k in churn.nodes if 0 <= k < count]] = True
                chosen &= among
            for i in np.flatnonzero(chosen):
                self.env.process(self._churn(int(i), churn))

    def _scripted(self, events: list[FailureEvent]) -> Generator[simpy.Event, Any, None]:
        # all scheduled from the same instant: time = now + (t - now) is exact when now == 0
        now = self.env.now
        timeouts = [UrgentTimeout(self.env, ev.time - now) for ev in events]
        for ev, timeout in zip(events, timeouts, strict=True):
            yield timeout
            self.apply(ev)

    def _churn(self, i: int, churn: Churn) -> Generator[simpy.Event, Any, None]:
        purpose = "link-churn" if churn.links else "churn"
        rng = rngs.generator(self.seed, purpose, i)
        target = link(*self._edges[i]) if churn.links else node(i)
        while True:
            yield UrgentTimeout(self.env, rng.exponential(churn.mtbf_s))
            self.apply(FailureEvent(self.env.now, target, "down"))
            yield UrgentTimeout(self.env, rng.exponential(churn.mttr_s))
            self.apply(FailureEvent(self.env.now, target, "up"))

    def apply(self, ev: FailureEvent) -> bool:
        """Apply ``ev`` now; record it if it changed something."""
        t = self.env.now
        changed: bool
        if ev.kind == "node":
            (k,) = ev.ids
            if ev.event == "compute":
                assert ev.value is not None
                self.devices.compute_flops[k] = ev.value
                changed = True
            else:
                up = ev.event == "up"
                changed = self.devices.bring_up(k, t) if up else self.devices.take_down(k, t)
                if changed and self._on_node_change is not None:
                    self._on_node_change(k, up)
        else:
            u, v = ev.ids
            arcs = self._links.index(np.array([u, v]), np.array([v, u]))
            if ev.event in ("down", "up"):
                op = self.network.link_up_at if ev.event == "up" else self.network.link_down
                changed = any([op(int(a), t) for a in arcs])
            else:
                assert ev.value is not None
                name = "bandwidth_Bps" if ev.event == "bandwidth" else "latency_s"
                self.network.set_link_parameter(arcs, name, ev.value)
                changed = True
        if changed:
            self.log.events.append(FailureEvent(t, ev.target, ev.event, ev.value))
        return changed
