"""Importing recorded availability traces into the netsim trace format.

Three input formats, one pipeline:

- ``fta``: Failure Trace Archive ``event_trace`` tables (every FTA platform:
  LANL, SETI@home, Overnet, ...): whitespace-separated rows ``event_id
  component_id node_id platform_id node_name event_type event_start_time
  event_stop_time event_end_reason`` after a ``#`` header; ``event_type`` 1 =
  available, 0 = unavailable over ``[start, stop)``.
- ``windows``: availability windows per device, as JSON ``{"device": [[start,
  end], ...]}`` or CSV with the header ``device,start,end``; outside its windows
  a device is in a *gap*.
- ``sessions``: session logs, one line per device: ``device start first_state
  d1 d2 ...`` (``first_state`` is ``up`` or ``down``; durations alternate), or
  the same as JSON ``{"device": {"start": s, "first": "up", "durations": [...]}}``.

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
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np

from netsim import rng as rngs
from netsim.errors import InputError
from netsim.traces import VERSION_LINE, FailureEvent, format_trace, node, read_text

FORMATS = ("fta", "windows", "sessions")
Gap = Literal["down", "unknown"]


@dataclass
class Intervals:
    """Known states of one device: ``[start[i], end[i])`` is up if ``up[i]``.
    Sorted, non-overlapping; ``source[i]`` names the input line."""

    start: list[float]
    end: list[float]
    up: list[bool]
    source: list[str]

    def add(self, start: float, end: float, up: bool, source: str, device: str) -> None:
        if end < start:
            raise InputError(f"{source}: end: {end!r} is before start {start!r}")
        if self.start and start < self.start[-1]:
            raise InputError(
                f"{source}: start: {start!r} goes backwards for device {device} "
                f"(previous interval starts at {self.start[-1]!r}, {self.source[-1]})"
            )
        if self.end and start < self.end[-1]:
            raise InputError(
                f"{source}: start: interval [{start!r}, {end!r}) overlaps the previous one of "
                f"device {device} [{self.start[-1]!r}, {self.end[-1]!r}) ({self.source[-1]})"
            )
        if end > start:  # zero-length intervals carry no time
            self.start.append(start)
            self.end.append(end)
            self.up.append(up)
            self.source.append(source)

    def overlaps(self, t0: float, t1: float) -> bool:
        """Whether any known state falls in ``[t0, t1)``."""
        return any(s < t1 and e > t0 for s, e in zip(self.start, self.end, strict=True))


Trace = dict[str, Intervals]


# ------------------------------------------------------------------ readers
def _number(text: str, where: str, field: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}: {field}: expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise InputError(f"{where}: {field}: expected a finite number, got {text!r}")
    return value


def _interval_list(trace: Trace, device: str) -> Intervals:
    if device not in trace:
        trace[device] = Intervals([], [], [], [])
    return trace[device]


def read_fta(path: str | Path) -> Trace:
    """Read a Failure Trace Archive ``event_trace`` table."""
    path = Path(path)
    trace: Trace = {}
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{number}"
        cells = line.split()
        if len(cells) != 9:
            raise InputError(
                f"{where}: expected 9 columns (event_id component_id node_id platform_id "
                f"node_name event_type event_start_time event_stop_time event_end_reason), "
                f"got {len(cells)}"
            )
        device = cells[2]
        if not re.fullmatch(r"-?\d+", device):
            raise InputError(f"{where}: node_id: expected an integer, got {device!r}")
        kind = cells[5]
        if kind not in ("0", "1"):
            raise InputError(
                f"{where}: event_type: expected 0 (unavailable) or 1 (available), got {kind!r}"
            )
        start = _number(cells[6], where, "event_start_time")
        end = _number(cells[7], where, "event_stop_time")
        _interval_list(trace, device).add(start, end, kind == "1", where, device)
    if not trace:
        raise InputError(f"{path}: empty trace: no event rows")
    return trace


def read_windows(path: str | Path) -> Trace:
    """Availability windows per device (JSON object or ``device,start,end`` CSV)."""
    path = Path(path)
    text = read_text(path)
    trace: Trace = {}
    if path.suffix.lower() == ".json":
        data = _load_json(path, text)
        for device, windows in data.items():
            where = f"{path}: device {device}"
            if not isinstance(windows, list):
                raise InputError(f"{where}: expected a list of [start, end] pairs")
            pairs = []
            for i, w in enumerate(windows):
                if not (isinstance(w, list) and len(w) == 2):
                    raise InputError(f"{where}, window {i}: expected [start, end], got {w!r}")
                pairs.append(
                    (
                        _number(str(w[0]), f"{where}, window {i}", "start"),
                        _number(str(w[1]), f"{where}, window {i}", "end"),
                        f"{where}, window {i}",
                    )
                )
            for start, end, src in sorted(pairs, key=lambda p: p[0]):
                _interval_list(trace, str(device)).add(start, end, True, src, str(device))
    else:
        rows = list(csv.reader(io.StringIO(text)))
        header = [c.strip() for c in rows[0]] if rows else []
        if header != ["device", "start", "end"]:
            raise InputError(
                f"{path}:1: expected the header 'device,start,end', got {','.join(header)!r}"
            )
        for number, row in enumerate(rows[1:], start=2):
            if not row or not "".join(row).strip():
                continue
            where = f"{path}:{number}"
            if len(row) != 3:
                raise InputError(f"{where}: expected 3 fields (device,start,end), got {len(row)}")
            device = row[0].strip()
            start, end = _number(row[1], where, "start"), _number(row[2], where, "end")
            _interval_list(trace, device).add(start, end, True, where, device)
    if not trace:
        raise InputError(f"{path}: empty trace: no windows")
    return trace


def read_sessions(path: str | Path) -> Trace:
    """Session logs: per device a start time, a first state and alternating durations."""
    path = Path(path)
    text = read_text(path)
    entries: list[tuple[str, str, str, str, list[str]]] = []
    if path.suffix.lower() == ".json":
        for device, s in _load_json(path, text).items():
            where = f"{path}: device {device}"
            if not isinstance(s, dict) or set(s) != {"start", "first", "durations"}:
                raise InputError(f'{where}: expected {{"start", "first", "durations"}}')
            if not isinstance(s["durations"], list):
                raise InputError(f"{where}: durations: expected a list of numbers")
            entries.append(
                (
                    where,
                    str(device),
                    str(s["start"]),
                    str(s["first"]),
                    [str(d) for d in s["durations"]],
                )
            )
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cells = line.split()
            where = f"{path}:{number}"
            if len(cells) < 4:
                raise InputError(f"{where}: expected 'device start first_state duration ...'")
            entries.append((where, cells[0], cells[1], cells[2], cells[3:]))
    trace: Trace = {}
    for where, device, start_text, first, durations in entries:
        if first not in ("up", "down"):
            raise InputError(f"{where}: first_state: expected up or down, got {first!r}")
        if device in trace:
            raise InputError(f"{where}: device {device} is given twice")
        t = _number(start_text, where, "start")
        up = first == "up"
        intervals = _interval_list(trace, device)
        for i, d_text in enumerate(durations):
            d = _number(d_text, where, f"duration {i + 1}")
            if d < 0:
                raise InputError(
                    f"{where}: duration {i + 1}: expected a number >= 0, got {d_text!r}"
                )
            intervals.add(t, t + d, up, where, device)
            t, up = t + d, not up
    if not trace:
        raise InputError(f"{path}: empty trace: no sessions")
    return trace


def _load_json(path: Path, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}: not valid JSON: {e.msg}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object keyed by device")
    return data


READERS = {"fta": read_fta, "windows": read_windows, "sessions": read_sessions}


def read(fmt: str, path: str | Path) -> Trace:
    """Read ``path`` in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt not in READERS:
        raise InputError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    return READERS[fmt](path)


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
