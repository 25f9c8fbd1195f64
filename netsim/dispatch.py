"""The one small interface between the engine and the hosts.

:class:`Dispatcher.call` takes every request of one timestamp, splits them by
host, and sends each host **one** call with all of its parts. It returns at
once; outputs are fetched (and, on Ray, awaited) only when the protocol reads
them, at the virtual time where they are consumed, so that kernels on
different hosts overlap. The driver reads a call's small outputs only; message
contents (:class:`~netsim.kernel.Payloads`) stay on the hosts and travel as
references.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from netsim.content_cache import ContentCache, read_only
from netsim.kernel import NBYTES, PayloadPart, RemotePayload, Request
from netsim.payload_rows import concatenate_rows


class HostFuture(Protocol):
    """The pending result of one host call.

    ``meta()`` is the driver-visible part (per request: small outputs and the
    sizes of payloads); ``handle`` names the payload part for other hosts (a
    Ray object reference), or is ``None`` when ``bulk()`` is local."""

    @property
    def handle(self) -> Any: ...

    def meta(self) -> list[dict[str, np.ndarray]]: ...

    def bulk(self) -> list[dict[str, np.ndarray]]: ...


class Backend(Protocol):
    """Runs host calls. ``assignment[d]`` is the host of device ``d``."""

    name: str
    assignment: np.ndarray

    @property
    def n_hosts(self) -> int: ...

    def submit(self, host: int, requests: list[Request]) -> HostFuture:
        """Call ``host`` with ``requests``, run in order after its earlier
        calls. A backend may send the call later, together with others, but
        no later than when one of their outputs is awaited."""
        ...

    def describe(self) -> dict[str, Any]:
        """Where the hosts run (for the summary)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class PayloadSource:
    """Message contents for :meth:`netsim.simulation.Simulation.inbox`: the row
    for position ``p`` of a request is ``data[p]`` (local array) or
    ``data[row_of[p]]`` (a :class:`RemotePayload` left on the hosts)."""

    data: np.ndarray | RemotePayload
    row_of: np.ndarray | None = None

    def take(self, positions: np.ndarray | list[int]) -> PayloadSource:
        """The contents at ``positions``, as a source of its own (e.g. a message
        forwarded as it was received)."""
        positions = np.asarray(positions, dtype=np.int64)
        if self.row_of is None:
            return PayloadSource(self.data[positions])
        return PayloadSource(self.data, self.row_of[positions])


def stack_sources(picks: list[tuple[PayloadSource, int]]) -> PayloadSource:
    """One source whose row ``i`` is position ``picks[i][1]`` of source
    ``picks[i][0]``: contents of messages from different calls, as one (e.g.
    every update a server aggregates). Remote contents stay remote."""
    if not picks:
        return PayloadSource(np.empty(0))
    if all(not isinstance(src.data, RemotePayload) for src, _ in picks):
        rows = [src.take([pos]).data for src, pos in picks]
        return PayloadSource(concatenate_rows(rows))  # type: ignore[arg-type]
    parts: list[PayloadPart] = []
    for src, pos in picks:
        assert isinstance(src.data, RemotePayload) and src.row_of is not None
        parts.extend(src.data[np.array([src.row_of[pos]])].parts)
    return PayloadSource(RemotePayload(tuple(parts)))


class _NoOutputs(dict[str, np.ndarray]):
    """Outputs of a request for no device: every key maps to an empty array."""

    def __missing__(self, key: str) -> np.ndarray:
        return np.empty(0)


class CallResult:
    """Outputs of one dispatched call, gathered per request on first use."""

    def __init__(
        self,
        requests: Sequence[Request],
        parts: list[tuple[HostFuture, list[np.ndarray]]],
    ) -> None:
        self._requests = requests
        self._parts = parts  # per host: future, and per request the positions it served
        self._gathered: dict[int, dict[str, np.ndarray]] = {}

    def outputs(self, i: int = 0) -> dict[str, np.ndarray]:
        """The driver-visible outputs of request ``i``, rows in its device order.
        A payload output ``key`` appears as its sizes, ``key + ".nbytes"``."""
        if i in self._gathered:
            return self._gathered[i]
        n = len(self._requests[i].devices)
        if n == 0:  # no host ran it (e.g. every node is down): empty outputs, any key
            self._gathered[i] = _NoOutputs()
            return self._gathered[i]
        self._gathered[i] = _gather(
            n, [(positions[i], future.meta()[i]) for future, positions in self._parts]
        )
        return self._gathered[i]

    def nbytes(self, i: int, key: str) -> np.ndarray:
        """Exact encoded size of each row of payload ``key`` of request ``i``."""
        return np.asarray(self.outputs(i)[key + NBYTES], dtype=np.int64)

    def payload(self, i: int, key: str) -> PayloadSource:
        """Payload ``key`` of request ``i`` as message contents. Contents on
        remote hosts stay where they are: receivers fetch them, the driver
        never does."""
        handles = [future.handle for future, _ in self._parts]
        if any(h is None for h in handles):  # local hosts: the arrays themselves
            n = len(self._requests[i].devices)
            pieces = [(positions[i], future.bulk()[i]) for future, positions in self._parts]
            return PayloadSource(_gather(n, pieces)[key] if n else np.empty(0))
        n = len(self._requests[i].devices)
        served = [positions[i] for _, positions in self._parts]
        # the same split round after round: the same (frozen) rows
        row_of = _ROW_OF.get(n, served, functools.partial(_row_of, n, served))
        parts = [
            PayloadPart(handle, i, key, _arange(len(p)))
            for handle, p in zip(handles, served, strict=True)
            if len(p)
        ]
        return PayloadSource(RemotePayload(tuple(parts)), row_of)


def _row_of(n: int, served: list[np.ndarray]) -> np.ndarray:
    """Row of each of ``n`` positions in the concatenation of the hosts'
    payloads (host ``h`` served the positions ``served[h]``), frozen."""
    row_of = np.empty(n, dtype=np.int64)
    offset = 0
    for positions in served:
        row_of[positions] = offset + _arange(len(positions))
        offset += len(positions)
    row_of.flags.writeable = False
    return row_of


_ROW_OF: ContentCache[np.ndarray] = ContentCache()


def _gather(n: int, pieces: list[tuple[np.ndarray, dict[str, np.ndarray]]]) -> dict[str, Any]:
    """One output mapping of ``n`` rows from the hosts' pieces (positions, outputs)."""
    pieces = [(p, out) for p, out in pieces if len(p)]
    if len(pieces) == 1 and len(pieces[0][0]) == n and _is_arange(pieces[0][0]):
        return pieces[0][1]
    gathered: dict[str, Any] = {}
    for positions, out in pieces:
        for key, value in out.items():
            value = np.asarray(value) if not isinstance(value, np.ndarray) else value
            if key not in gathered:
                gathered[key] = np.empty((n, *value.shape[1:]), dtype=value.dtype)
            if value.dtype == object:
                for p, v in zip(positions, value, strict=True):
                    gathered[key][p] = v
            else:
                gathered[key][positions] = value
    return gathered


@functools.lru_cache(maxsize=64)
def _arange(n: int) -> np.ndarray:
    """``np.arange(n)``, frozen: the same object for the same ``n`` (index
    arrays that caches and :mod:`actors.ray_memo` know by identity)."""
    a = np.arange(n)
    a.flags.writeable = False
    return a


def _is_arange(a: np.ndarray) -> bool:
    return a is _arange(len(a)) or np.array_equal(a, _arange(len(a)))


def _by_host(assignment: np.ndarray, devices: np.ndarray, n_hosts: int) -> tuple[np.ndarray, ...]:
    """Per host, the positions of its devices in ``devices`` (in order; read-only)."""
    hosts = assignment[devices]
    if n_hosts < 2**15:  # a stable sort of 16-bit keys is a radix sort: O(n)
        hosts = hosts.astype(np.int16)
    order = np.argsort(hosts, kind="stable")
    bounds = np.searchsorted(hosts[order], np.arange(n_hosts + 1))
    return read_only(*(order[bounds[h] : bounds[h + 1]].copy() for h in range(n_hosts)))


_SPLITS: ContentCache[tuple[np.ndarray, ...]] = ContentCache()


class Dispatcher:
    """Splits requests by host and submits one call per host."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.calls = 0  # host calls made, for the summary

    def call(self, requests: Sequence[Request]) -> CallResult:
        assignment = self.backend.assignment
        n_hosts = self.backend.n_hosts
        # per request, per host: positions of that host's devices in the request
        split: list[list[np.ndarray]] = []
        for r in requests:
            if n_hosts == 1:
                split.append([_arange(len(r.devices))])
                continue
            # the same devices round after round: the same (read-only) positions
            hosts = functools.partial(_by_host, assignment, r.devices, n_hosts)
            split.append(list(_SPLITS.get(n_hosts, (r.devices, assignment), hosts)))
        parts = []
        for h in range(n_hosts):
            positions = [s[h] for s in split]
            if not any(len(p) for p in positions):
                continue
            host_requests = [
                r if n_hosts == 1 else r.select(p) for r, p in zip(requests, positions, strict=True)
            ]
            parts.append((self.backend.submit(h, host_requests), positions))
            self.calls += 1
        return CallResult(requests, parts)
