"""A host's side of the compiled graph (:mod:`actors.ray_graph`): what it
runs in each execution, over Ray's channels or over sockets
(:mod:`actors.ray_sockets`).

In an execution a host first **exports** the rows of its kept payloads that
the other hosts' requests name (every host works out those rows alike from
the execution's requests, so an export carries data only), then **steps**:
resolves its inbox from its own memory and the other hosts' exports, runs
its kernels and returns the small outputs. What it computes from index
arrays that arrive again as the same objects (:mod:`actors.ray_memo`) it
keeps with them. Errors travel as values (:class:`Failed`).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from actors.ray_memo import ReceivedArrays
from netsim.kernel import Fetch, RemotePayload, Request

if TYPE_CHECKING:
    from actors.ray_graph import GraphHandle


@dataclass
class Failed:
    """An exception raised on a host, carried back as a value."""

    error: BaseException


Input = tuple[int, list[list[Request] | None], list[list[int]]]  # seq, requests, releases


class _Lookups:
    """Results computed from index arrays that arrive again as the same
    objects, execution after execution (:mod:`actors.ray_memo`): kept with
    those arrays, so that a synchronous protocol's hosts compute them once."""

    LIMIT = 256  # entries; computed from arrays sent once, they are dropped

    def __init__(self) -> None:
        self.entries: dict[tuple[int, ...], tuple[tuple[np.ndarray, ...], np.ndarray]] = {}

    def get(self, arrays: tuple[np.ndarray, ...], compute: Any) -> np.ndarray:
        """``compute(*arrays)``, or what it gave for these very arrays."""
        key = tuple(map(id, arrays))
        hit = self.entries.get(key)
        if hit is not None and all(a is b for a, b in zip(hit[0], arrays, strict=True)):
            return hit[1]
        value = compute(*arrays)
        if len(self.entries) >= self.LIMIT:
            self.entries.clear()
        self.entries[key] = (arrays, value)
        return cast(np.ndarray, value)


def _unique_rows(*rows: np.ndarray) -> np.ndarray:
    return np.unique(np.concatenate(rows))


class _Rows:
    """Some rows of a payload array (``rows`` ascending), indexed by the
    row numbers of the full array."""

    def __init__(self, rows: np.ndarray, data: np.ndarray, lookups: _Lookups) -> None:
        self.rows, self.data, self.lookups = rows, data, lookups

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        return self.data[self.locate(rows)[1]]

    def locate(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where ``rows`` are: ``data`` and their positions in it."""
        return self.data, self.lookups.get((self.rows, rows), np.searchsorted)


def remote_parts(requests: list[Request] | None) -> list[Any]:
    parts: list[Any] = []
    for r in requests or []:
        if r.inbox is not None and isinstance(r.inbox.payload, RemotePayload):
            parts.extend(r.inbox.payload.parts)
    return parts


class GraphHost:
    """The graph's methods of a host actor (mixed into its body, which holds
    ``core``: a :class:`~actors.host.HostCore`)."""

    core: Any
    index: int = -1
    kept: dict[int, list[dict[str, np.ndarray]]]
    received: ReceivedArrays
    lookups: _Lookups

    def graph_join(self, index: int) -> int:
        """Take part in a compiled graph as host ``index``."""
        self.index, self.kept, self.received = index, {}, ReceivedArrays()
        self.lookups = _Lookups()
        return index

    def serve(self, directory: str, index: int, n_hosts: int) -> int:
        """Take part in the graph over sockets (:mod:`actors.ray_sockets`)
        as host ``index``, until the driver closes its socket."""
        from actors.ray_sockets import serve

        self.graph_join(index)
        return serve(self, directory, index, n_hosts)

    def export(self, sent: bytes) -> Any:
        """Rows of this host's kept payloads that other hosts' requests name:
        ``{(seq, request, key): data}``, the rows of :meth:`_wanted` (the
        hosts that read them work those out for themselves)."""
        try:
            _, requests, _ = self._given(sent)
            out = {}
            for (seq, req, key), unique in self._wanted(requests, self.index).items():
                out[seq, req, key] = self.kept[seq][req][key][unique]
            return pickle.dumps(out, protocol=5)
        except Exception as e:  # carried to the driver as a value
            return Failed(e)

    def _wanted(
        self, requests: list[list[Request] | None], exporter: int
    ) -> dict[tuple[int, int, str], np.ndarray]:
        """The rows of host ``exporter``'s payloads that the other hosts'
        requests name, ascending, by ``(seq, request, key)``: every host
        works them out alike from the execution's requests."""
        groups: dict[tuple[int, int, str], list[np.ndarray]] = {}
        for h, reqs in enumerate(requests):
            if h == exporter:
                continue
            for p in remote_parts(reqs):
                s = p.source
                if s.host == exporter:
                    groups.setdefault((s.seq, s.offset + p.request, p.key), []).append(p.rows)
        return {k: self.lookups.get(tuple(rows), _unique_rows) for k, rows in groups.items()}

    def _given(self, sent: bytes) -> Input:
        if getattr(self, "_sent", None) is not sent:  # read once for export and step
            self._sent, self._input = sent, self.received.loads(sent)
        return cast(Input, self._input)

    def step(self, sent: bytes, *exports: Any) -> Any:
        """Run this host's requests of the execution; its small outputs."""
        seq, requests, releases = self._given(sent)
        try:
            mine = requests[self.index]
            if mine is None:
                return []
            failed = [e for e in exports if isinstance(e, Failed)]
            if failed:
                return failed[0]
            self.core._fetch = self._fetcher(requests, exports)
            meta, bulk = self.core.call(mine)
            self.kept[seq] = bulk
            return pickle.dumps(meta, protocol=5)
        except Exception as e:  # carried to the driver as a value
            return Failed(e)
        finally:
            for s in releases[self.index]:
                self.kept.pop(s, None)

    def _fetcher(self, requests: list[list[Request] | None], exports: tuple[Any, ...]) -> Fetch:
        views: dict[int, dict[tuple[int, int, str], _Rows]] = {}

        def exported(host: int) -> dict[tuple[int, int, str], _Rows]:
            if host not in views:
                data = pickle.loads(exports[host])
                wanted = self._wanted(requests, host)
                views[host] = {k: _Rows(rows, data[k], self.lookups) for k, rows in wanted.items()}
            return views[host]

        def fetch(sources: list[GraphHandle]) -> list[list[dict[str, np.ndarray]]]:
            out: list[Any] = []
            for s in sources:  # indexed by the request numbers of s's call
                if s.host == self.index:
                    out.append(self.kept[s.seq][s.offset :])
                    continue
                view: dict[int, dict[str, _Rows]] = {}
                for (seq, req, key), rows in exported(s.host).items():
                    if seq == s.seq:
                        view.setdefault(req - s.offset, {})[key] = rows
                out.append(view)
            return cast(list[list[dict[str, np.ndarray]]], out)

        return fetch


__all__ = ["Failed", "GraphHost", "remote_parts"]
