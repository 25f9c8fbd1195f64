"""Reading recorded availability traces: three input formats, one result.

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

Each becomes per-device intervals of known state (:class:`Intervals`, a
:data:`Trace` per file); :mod:`netsim.trace_import` turns them into events.
Zero-length intervals are ignored. Every error names the file, the line (or
the JSON device) and the field.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netsim.errors import InputError
from netsim.traces import read_text

FORMATS = ("fta", "windows", "sessions")


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
