"""What a failure trace holds: nodes, span, availability, failures, MTBF, MTTR.

Definitions, over ``[0, end)`` (``end``: the last event, unless given), for the
nodes the trace names (each starts up, as in a run):

- availability of a node: the fraction of ``[0, end)`` it is up;
- failures: ``down`` events that take a node down;
- MTBF: total up time / failures; MTTR: total down time / failures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from netsim.errors import InputError
from netsim.traces import FailureEvent


@dataclass(frozen=True)
class TraceStats:
    nodes: np.ndarray  # the node ids the trace names
    links: int
    end: float
    availability: np.ndarray  # per named node
    failures: int
    up_time: float
    down_time: float
    parameter_events: int

    @property
    def mtbf(self) -> float:
        return self.up_time / self.failures if self.failures else float("inf")

    @property
    def mttr(self) -> float:
        return self.down_time / self.failures if self.failures else 0.0

    def lines(self) -> list[str]:
        a = self.availability
        return [
            f"nodes            {len(self.nodes)} (ids {self.nodes.min()}..{self.nodes.max()})"
            if len(self.nodes)
            else "nodes            0",
            f"links            {self.links}",
            f"time span        0 .. {self.end:.6g} s",
            f"availability     mean {a.mean():.4f}  min {a.min():.4f}  max {a.max():.4f}"
            if len(a)
            else "availability     -",
            f"failures         {self.failures:,}",
            f"MTBF             {self.mtbf:.6g} s",
            f"MTTR             {self.mttr:.6g} s",
            f"parameter events {self.parameter_events:,}",
        ]


def node_periods(events: list[FailureEvent], end: float) -> dict[int, list[tuple[float, float]]]:
    """Down periods ``[down, up)`` of each named node, clipped to ``[0, end)``."""
    periods: dict[int, list[tuple[float, float]]] = {}
    down_since: dict[int, float] = {}
    for e in events:
        if e.kind != "node" or e.event not in ("down", "up"):
            continue
        (k,) = e.ids
        periods.setdefault(k, [])
        if e.time >= end:
            continue
        if e.event == "down" and k not in down_since:
            down_since[k] = e.time
        elif e.event == "up" and k in down_since:
            periods[k].append((down_since.pop(k), e.time))
    for k, t in down_since.items():
        periods[k].append((t, end))
    return periods


def trace_stats(events: list[FailureEvent], end: float | None = None) -> TraceStats:
    if not events:
        raise InputError("the trace has no events")
    if end is not None and not (math.isfinite(end) and end > 0):
        raise InputError(f"--until: expected a time > 0 in seconds, got {end:g}")
    end = max(e.time for e in events) if end is None else end
    if not end > 0:
        raise InputError("the trace spans no time (all events at t = 0); give --until")
    periods = node_periods(events, end)
    nodes = np.array(sorted(periods), dtype=np.int64)
    down = np.array([sum(b - a for a, b in periods[k]) for k in nodes])
    return TraceStats(
        nodes=nodes,
        links=len({e.target for e in events if e.kind == "link"}),
        end=end,
        availability=1.0 - down / end,
        failures=sum(len(p) for p in periods.values()),
        up_time=float(len(nodes) * end - down.sum()),
        down_time=float(down.sum()),
        parameter_events=sum(e.event not in ("down", "up") for e in events),
    )
