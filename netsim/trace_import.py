"""Importing recorded availability traces into the netsim trace format.

The formats (``fta``, ``windows``, ``sessions``) are read by
:mod:`netsim.trace_formats`; their readers are re-exported here.

Each becomes per-device intervals of known state (:class:`Intervals`), then
:func:`to_events` makes the explicit choices:

- **window**: ``[start, start + duration)`` in trace seconds (default: the
  whole trace);
- **scale**: trace seconds per simulated second (``t_sim = (t - start) / scale``);
- **nodes**: the devices with a known state somewhere in the window, in id
  order (numeric ids numerically), mapped to netsim nodes ``0..N-1``: the first
  ``N``, a random sample of ``N`` (seeded), or an explicit map file
  (``trace_id,node`` per line);
- **gap**: what no record means: ``down``, or ``unknown`` (the device keeps its
  last known state; before its first record in the window it is up).

Zero-length intervals are ignored. Every error names the file, the line (or
the JSON device) and the field.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import numpy as np

from netsim import rng as rngs
from netsim.errors import InputError
from netsim.trace_formats import (
    FORMATS,
    READERS,
    Intervals,
    Trace,
    read,
    read_fta,
    read_sessions,
    read_windows,
)
from netsim.traces import VERSION_LINE, FailureEvent, format_trace, node, read_text

Gap = Literal["down", "unknown"]


# ------------------------------------------------------------------ choices
@dataclass(frozen=True)
class Selection:
    """The explicit choices of an import (see the module docstring)."""

    start: float | None = None
    duration: float | None = None
    scale: float = 1.0
    nodes: int | None = None
    sample_seed: int | None = None
    map_file: str | Path | None = None
    gap: Gap = "down"


@dataclass(frozen=True)
class Imported:
    """An imported trace: events, the trace id of each netsim node, the window."""

    events: list[FailureEvent]
    mapping: list[str]
    start: float
    end: float
    scale: float
    candidates: int

    def text(self, header: Iterable[str] = ()) -> str:
        """The netsim trace, with provenance and the node map as comments."""
        body = format_trace(self.events).split("\n", 1)[1]
        lines = [VERSION_LINE, *(f"# {h}" for h in header)]
        lines.append(
            f"# window [{self.start!r}, {self.end!r}) trace s, scale {self.scale!r} trace s per "
            f"simulated s, {len(self.mapping)} of {self.candidates} devices with data in the window"
        )
        lines += [f"# node {k} = trace device {d}" for k, d in enumerate(self.mapping)]
        return "\n".join(lines) + "\n" + body


def _sort_key(device: str) -> tuple[int, float, str]:
    return (0, float(device), "") if re.fullmatch(r"-?\d+(\.\d+)?", device) else (1, 0.0, device)


def to_events(trace: Trace, selection: Selection) -> Imported:
    """Apply the window, node mapping, gap rule and scale."""
    sel = selection
    if not (math.isfinite(sel.scale) and sel.scale > 0):
        raise InputError(f"--scale: expected a number > 0, got {sel.scale!r}")
    if sel.gap not in ("down", "unknown"):
        raise InputError(f"--gap: expected down or unknown, got {sel.gap!r}")
    known = [iv for iv in trace.values() if iv.start]
    if not known:
        raise InputError("the trace has no interval of positive length")
    first = min(iv.start[0] for iv in known)
    last = max(iv.end[-1] for iv in known)
    t0 = first if sel.start is None else sel.start
    if sel.duration is not None and not sel.duration > 0:
        raise InputError(f"--duration: expected a number > 0, got {sel.duration!r}")
    t1 = last if sel.duration is None else t0 + sel.duration
    if not t1 > t0:
        raise InputError(f"--start {t0!r}: the window is empty (the trace ends at {last!r})")
    candidates = sorted((d for d, iv in trace.items() if iv.overlaps(t0, t1)), key=_sort_key)
    if not candidates:
        raise InputError(f"no device has data in the window [{t0!r}, {t1!r}) of the trace")
    mapping = _map_nodes(candidates, sel)
    events: list[FailureEvent] = []
    for k, device in enumerate(mapping):
        events += _device_events(trace.get(device), k, t0, t1, sel)
    events.sort(key=lambda e: e.time)  # stable: node order at equal times
    return Imported(events, mapping, t0, t1, sel.scale, len(candidates))


def _map_nodes(candidates: list[str], sel: Selection) -> list[str]:
    if sel.map_file is not None:
        if sel.sample_seed is not None:
            raise InputError("--map and --sample are alternatives; give one")
        return _read_map(Path(sel.map_file))
    n = len(candidates) if sel.nodes is None else sel.nodes
    if n < 1:
        raise InputError(f"--nodes: expected an integer >= 1, got {n}")
    if n > len(candidates):
        raise InputError(f"--nodes {n}: only {len(candidates)} devices have data in the window")
    if sel.sample_seed is None:
        return candidates[:n]
    chosen = rngs.generator(sel.sample_seed, "trace-sample").choice(
        len(candidates), n, replace=False
    )
    return [candidates[i] for i in sorted(chosen)]


def _read_map(path: Path) -> list[str]:
    """``trace_id,node`` lines mapping trace devices onto nodes ``0..N-1``."""
    by_node: dict[int, str] = {}
    for number, row in enumerate(csv.reader(io.StringIO(read_text(path, "map"))), start=1):
        if not row or row[0].strip().startswith("#") or row == ["trace_id", "node"]:
            continue
        where = f"{path}:{number}"
        if len(row) != 2 or not row[1].strip().isdigit():
            raise InputError(f"{where}: expected 'trace_id,node' with node an integer >= 0")
        k = int(row[1])
        if k in by_node:
            raise InputError(f"{where}: node {k} is mapped twice")
        by_node[k] = row[0].strip()
    if sorted(by_node) != list(range(len(by_node))):
        raise InputError(f"{path}: nodes must be 0..N-1 with none missing")
    return [by_node[k] for k in range(len(by_node))]


def _device_events(
    iv: Intervals | None, k: int, t0: float, t1: float, sel: Selection
) -> list[FailureEvent]:
    """Transitions of one device in ``[t0, t1)`` as events of node ``k``."""
    pieces: list[tuple[float, bool | None]] = []  # (start, up; None = a gap), in time order
    cursor = t0
    if iv is not None:
        for s, e, up in zip(iv.start, iv.end, iv.up, strict=True):
            if e <= t0 or s >= t1:
                continue
            if s > cursor:
                pieces.append((cursor, None))
            pieces.append((max(s, t0), up))
            cursor = min(e, t1)
    if cursor < t1:
        pieces.append((cursor, None))
    events: list[FailureEvent] = []
    state = True  # netsim nodes start up
    for s, known in pieces:
        # a gap is down, or unknown: the device keeps its last known state
        up = known if known is not None else (False if sel.gap == "down" else state)
        if up != state:
            events.append(FailureEvent((s - t0) / sel.scale, node(k), "up" if up else "down"))
            state = up
    return events


# ------------------------------------------------------------------ helpers for the CLI
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_time(text: str, name: str) -> float:
    """Seconds, or an ISO 8601 date/time (UTC) for traces in Unix time."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"{name} {text}: expected seconds or an ISO date (e.g. 2004-01-01)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def parse_duration(text: str, name: str) -> float:
    """Seconds, or a number with a unit: ``90s``, ``15m``, ``12h``, ``30d``, ``2w``."""
    m = re.fullmatch(r"\s*([0-9.eE+-]+)\s*([smhdw]?)\s*", text)
    if m:
        try:
            return float(m[1]) * _UNITS.get(m[2] or "s", 1.0)
        except ValueError:
            pass
    raise InputError(f"{name} {text}: expected seconds or a number with a unit s, m, h, d or w")


def up_fraction(events: list[FailureEvent], n_nodes: int, end: float) -> np.ndarray:
    """Fraction of ``[0, end)`` each node is up under ``events`` (nodes start up)."""
    down_since = np.full(n_nodes, np.nan)
    down_time = np.zeros(n_nodes)
    for e in sorted((e for e in events if e.kind == "node" and e.time < end), key=lambda e: e.time):
        (k,) = e.ids
        if e.event == "down" and np.isnan(down_since[k]):
            down_since[k] = e.time
        elif e.event == "up" and not np.isnan(down_since[k]):
            down_time[k] += e.time - down_since[k]
            down_since[k] = np.nan
    still = ~np.isnan(down_since)
    down_time[still] += end - down_since[still]
    return 1.0 - down_time / end


__all__ = [
    "FORMATS",
    "READERS",
    "Imported",
    "Intervals",
    "Selection",
    "Trace",
    "parse_duration",
    "parse_time",
    "read",
    "read_fta",
    "read_sessions",
    "read_windows",
    "to_events",
    "up_fraction",
]
