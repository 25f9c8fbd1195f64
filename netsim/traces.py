"""The netsim failure trace format, version 1 (see docs/traces.md).

A CSV file with a version line, a header and one event per row::

    # netsim failure trace v1
    time,target,event,value
    12.5,node:3,down,
    40.0,node:3,up,
    70.0,link:3-7,bandwidth,1.5e6

``time`` is simulated seconds (>= 0); ``target`` is ``node:<id>`` or
``link:<u>-<v>``; ``event`` is ``down``/``up`` (no value) or a parameter event
with a value: ``compute`` (FLOP/s, nodes), ``bandwidth`` (bytes/s, links),
``latency`` (seconds, links). Lines starting with ``#`` are comments. Within one
target, times must not go backwards. A header with no events is a valid trace
(no failures); an empty file is not. Times are written with ``repr`` so that a
written trace replays at exactly the same times.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from netsim.errors import InputError

VERSION_LINE = "# netsim failure trace v1"
COLUMNS = ("time", "target", "event", "value")
NODE_EVENTS = ("down", "up", "compute")
LINK_EVENTS = ("down", "up", "bandwidth", "latency")
_TARGET = re.compile(r"^(node):(\d+)$|^(link):(\d+)-(\d+)$")
_VERSION = re.compile(r"^#\s*netsim failure trace v(\d+)\s*$")


@dataclass(frozen=True)
class FailureEvent:
    """One event: ``target`` is ``node:<id>`` or ``link:<u>-<v>``."""

    time: float
    target: str
    event: str
    value: float | None = None
    source: str | None = field(default=None, compare=False)  # "file:line", for errors

    @property
    def kind(self) -> str:
        return self.target.split(":", 1)[0]

    @property
    def ids(self) -> tuple[int, ...]:
        """``(node,)`` or ``(u, v)``."""
        m = _TARGET.match(self.target)
        assert m is not None
        return (int(m[2]),) if m[1] else (int(m[4]), int(m[5]))

    def where(self) -> str:
        return f"{self.source}: " if self.source else f"event at t={self.time!r}: "


def node(node_id: int) -> str:
    return f"node:{node_id}"


def link(u: int, v: int) -> str:
    return f"link:{u}-{v}"


def check_event(ev: FailureEvent) -> None:
    """Validate one event on its own (not against a topology)."""
    where = ev.where()
    if not math.isfinite(ev.time) or ev.time < 0:
        raise InputError(f"{where}time: expected a finite number >= 0, got {ev.time!r}")
    m = _TARGET.match(ev.target)
    if m is None:
        raise InputError(f"{where}target: expected node:<id> or link:<u>-<v>, got {ev.target!r}")
    allowed = NODE_EVENTS if m[1] else LINK_EVENTS
    if ev.event not in allowed:
        raise InputError(
            f"{where}event: expected one of {', '.join(allowed)} for a {ev.kind}, got {ev.event!r}"
        )
    if ev.event in ("down", "up"):
        if ev.value is not None:
            raise InputError(f"{where}value: a {ev.event} event takes no value, got {ev.value!r}")
    else:
        low_ok = ev.value is not None and (ev.value >= 0 if ev.event == "latency" else ev.value > 0)
        if ev.value is None or not math.isfinite(ev.value) or not low_ok:
            bound = ">= 0" if ev.event == "latency" else "> 0"
            raise InputError(
                f"{where}value: a {ev.event} event needs a finite number {bound}, got {ev.value!r}"
            )
    if m[3] and m[4] == m[5]:
        raise InputError(f"{where}target: a link joins two different nodes, got {ev.target!r}")


def read_text(path: str | Path, what: str = "trace") -> str:
    """The UTF-8 text of ``path``; binary content (a pickle, say) is refused."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: {what} file not found") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    if b"\0" in raw[:4096] or raw[:2] == b"\x80\x04":  # NUL bytes, or a pickle protocol header
        raise InputError(f"{path}: not a text {what} file (binary content, a pickle?)")
    try:
        return raw.decode("utf-8-sig")  # a byte-order mark, as some editors write, is dropped
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.start})") from None


def read_trace(path: str | Path) -> list[FailureEvent]:
    """Read and validate a trace file; events sorted by time (stable)."""
    return parse_trace(read_text(path), str(path))


def parse_trace(text: str, name: str = "<trace>") -> list[FailureEvent]:
    """Parse trace text; ``name`` is used in error messages."""
    events: list[FailureEvent] = []
    header_seen = False
    last_time: dict[str, float] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{name}:{number}"
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            version = _VERSION.match(stripped)
            if version and version[1] != "1":
                raise InputError(
                    f"{where}: trace format v{version[1]} is not supported; this netsim reads v1"
                )
            continue
        try:
            row = next(csv.reader([line]))
        except csv.Error as e:
            raise InputError(f"{where}: not a CSV row: {e}") from None
        cells = [c.strip() for c in row]
        if not header_seen:
            if tuple(cells) != COLUMNS:
                raise InputError(
                    f"{where}: expected the header 'time,target,event,value', got {stripped!r}"
                )
            header_seen = True
            continue
        if len(cells) != 4:
            raise InputError(
                f"{where}: expected 4 fields (time,target,event,value), got {len(cells)}"
            )
        events.append(_parse_row(cells, where))
        ev = events[-1]
        if ev.time < last_time.get(ev.target, -math.inf):
            raise InputError(
                f"{where}: time: {ev.time!r} goes backwards for {ev.target} "
                f"(previous event at {last_time[ev.target]!r})"
            )
        last_time[ev.target] = ev.time
    if not header_seen:
        raise InputError(f"{name}: empty trace; expected the header 'time,target,event,value'")
    # a header and no events is a valid trace: no failures (what a failure-free run records)
    return sorted(events, key=lambda e: e.time)


def _parse_row(cells: list[str], where: str) -> FailureEvent:
    time_text, target, event, value_text = cells
    try:
        time = float(time_text)
    except ValueError:
        raise InputError(f"{where}: time: expected a number, got {time_text!r}") from None
    value: float | None = None
    if value_text:
        try:
            value = float(value_text)
        except ValueError:
            raise InputError(f"{where}: value: expected a number, got {value_text!r}") from None
    ev = FailureEvent(time, target, event, value, source=where)
    check_event(ev)
    return ev


def format_trace(events: Iterable[FailureEvent]) -> str:
    """Trace text for ``events`` in the given order (times written exactly)."""
    out = io.StringIO()
    out.write(VERSION_LINE + "\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for ev in events:
        writer.writerow(
            [repr(ev.time), ev.target, ev.event, "" if ev.value is None else repr(ev.value)]
        )
    return out.getvalue()
