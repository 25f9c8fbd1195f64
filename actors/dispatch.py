"""The one small interface between the engine and the hosts.

:class:`Dispatcher.call` takes every request of one timestamp, splits them by
host, and sends each host **one** call with all of its parts. It returns at
once; outputs are fetched (and, on Ray, awaited) only when the protocol reads
them, at the virtual time where they are consumed, so that kernels on
different hosts overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from actors.host import Outputs, PayloadPart, RemotePayload, Request


class HostFuture(Protocol):
    """The pending outputs of one host call. ``handle`` names them for other
    hosts (a Ray object reference), or is ``None`` when they are local."""

    @property
    def handle(self) -> Any: ...

    def result(self) -> list[Outputs]: ...


@dataclass(frozen=True)
class PayloadSource:
    """Message contents for :meth:`netsim.simulation.Simulation.inbox`: the row
    for position ``p`` of a request is ``data[p]`` (local array) or
    ``data[row_of[p]]`` (a :class:`RemotePayload` left on the hosts)."""

    data: np.ndarray | RemotePayload
    row_of: np.ndarray | None = None


class Backend(Protocol):
    """Runs host calls. ``assignment[d]`` is the host of device ``d``."""

    name: str
    assignment: np.ndarray

    @property
    def n_hosts(self) -> int: ...

    def submit(self, host: int, requests: list[Request]) -> HostFuture: ...

    def close(self) -> None: ...


def partition(n_devices: int, hosts: int) -> np.ndarray:
    """Host of each device: contiguous blocks of nearly equal size."""
    if hosts < 1:
        raise ValueError("hosts must be >= 1")
    return (np.arange(n_devices) * hosts) // max(n_devices, 1)


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
        self._host_outputs: list[list[Outputs]] | None = None
        self._gathered: dict[int, Outputs] = {}

    def outputs(self, i: int = 0) -> Outputs:
        """Outputs of request ``i``, rows in its device order."""
        if i in self._gathered:
            return self._gathered[i]
        if self._host_outputs is None:
            self._host_outputs = [future.result() for future, _ in self._parts]
        pieces = [
            (positions[i], outs[i])
            for (_, positions), outs in zip(self._parts, self._host_outputs, strict=True)
            if len(positions[i])
        ]
        n = len(self._requests[i].devices)
        if n == 0:  # no host ran it (e.g. every node is down): empty outputs, any key
            self._gathered[i] = _NoOutputs()
            return self._gathered[i]
        if (
            len(pieces) == 1
            and len(pieces[0][0]) == n
            and np.array_equal(pieces[0][0], np.arange(n))
        ):
            gathered = pieces[0][1]
        else:
            gathered = {}
            for positions, out in pieces:
                for key, value in out.items():
                    if key not in gathered:
                        gathered[key] = np.empty((n, *value.shape[1:]), dtype=value.dtype)
                    gathered[key][positions] = value
        self._gathered[i] = gathered
        return gathered

    def payload(self, i: int, key: str) -> PayloadSource:
        """Output ``key`` of request ``i`` as message contents. Outputs of remote
        hosts stay where they are: receivers fetch them, the driver never does."""
        handles = [future.handle for future, _ in self._parts]
        if any(h is None for h in handles):
            return PayloadSource(self.outputs(i)[key])
        n = len(self._requests[i].devices)
        row_of = np.empty(n, dtype=np.int64)
        parts, offset = [], 0
        for handle, (_, positions) in zip(handles, self._parts, strict=True):
            k = len(positions[i])
            if k:
                row_of[positions[i]] = offset + np.arange(k)
                parts.append(PayloadPart(handle, i, key, np.arange(k)))
                offset += k
        return PayloadSource(RemotePayload(tuple(parts)), row_of)


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
            hosts = assignment[r.devices]
            if n_hosts == 1:
                split.append([np.arange(len(r.devices))])
                continue
            order = np.argsort(hosts, kind="stable")
            bounds = np.searchsorted(hosts[order], np.arange(n_hosts + 1))
            split.append([order[bounds[h] : bounds[h + 1]] for h in range(n_hosts)])
        parts = []
        for h in range(n_hosts):
            positions = [s[h] for s in split]
            if not any(len(p) for p in positions):
                continue
            host_requests = [
                r if len(p) == len(r.devices) and n_hosts == 1 else r.select(p)
                for r, p in zip(requests, positions, strict=True)
            ]
            parts.append((self.backend.submit(h, host_requests), positions))
            self.calls += 1
        return CallResult(requests, parts)
