"""A host: where the state of some devices lives and their kernels run.

The driver sends a host one call per timestamp: a list of :class:`Request`,
each naming a kernel, the devices it runs for, their per-device inputs and the
messages delivered to them (:class:`Inbox`). The host runs the requests in
order and returns one output mapping per request, rows aligned with the
request's devices. The same :class:`HostCore` runs in-process (inline backend)
or inside a Ray actor.

A kernel is a function ``(state, call) -> (state, outputs)`` over the arrays
of the host's devices (structure of arrays); ``call.idx`` selects the rows.
A device's result depends only on its own state, inputs, messages and random
stream, never on which other devices share its host.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from netsim import rng as rngs

Outputs = dict[str, np.ndarray]


@dataclass(frozen=True)
class PayloadPart:
    """Rows ``rows`` of output ``key`` of request ``request`` of a host call;
    ``source`` is that call's handle (a Ray object reference)."""

    source: Any
    request: int
    key: str
    rows: np.ndarray


@dataclass(frozen=True)
class RemotePayload:
    """Message contents left where they were produced: the concatenation of
    ``parts``, fetched by the host that receives them (host to host through
    Ray's object store, never through the driver)."""

    parts: tuple[PayloadPart, ...]

    def __len__(self) -> int:
        return sum(len(p.rows) for p in self.parts)

    def __getitem__(self, rows: np.ndarray) -> RemotePayload:
        """The rows ``rows`` (ascending) of the concatenation."""
        offsets = np.cumsum([0] + [len(p.rows) for p in self.parts])
        part = np.searchsorted(offsets, rows, side="right") - 1
        within = rows - offsets[part]
        return RemotePayload(
            tuple(
                PayloadPart(p.source, p.request, p.key, p.rows[within[part == g]])
                for g, p in enumerate(self.parts)
                if np.any(part == g)
            )
        )

    def resolve(self, fetch: Callable[[list[Any]], list[list[Outputs]]]) -> np.ndarray:
        """The rows as one array; ``fetch`` turns call handles into their outputs."""
        if not self.parts:
            return np.empty(0)
        sources = list({id(p.source): p.source for p in self.parts}.values())
        fetched = dict(zip((id(s) for s in sources), fetch(sources), strict=True))
        return np.concatenate([fetched[id(p.source)][p.request][p.key][p.rows] for p in self.parts])


@dataclass(frozen=True)
class Inbox:
    """Messages delivered to the devices of a request, grouped by receiver.

    Receiver ``i`` (in the request's device order) got messages
    ``indptr[i]:indptr[i+1]``; message ``j`` came from ``sender[j]`` over link
    ``link[j]`` and carries ``payload[row[j]]``. On its way to a Ray host the
    payload may be a :class:`RemotePayload`; kernels always see an array.
    """

    indptr: np.ndarray
    sender: np.ndarray
    link: np.ndarray
    row: np.ndarray
    payload: Any  # np.ndarray, or RemotePayload until the host resolves it

    def counts(self) -> np.ndarray:
        return np.diff(self.indptr)

    def receiver(self) -> np.ndarray:
        """Per message, the index of its receiver in the request."""
        return np.repeat(np.arange(len(self.indptr) - 1), self.counts())

    def select(self, positions: np.ndarray) -> Inbox:
        """The inbox of the receivers at ``positions`` (in that order), with only
        the payload rows they need."""
        counts = self.counts()[positions]
        starts = self.indptr[:-1][positions]
        total = int(counts.sum())
        indptr = np.concatenate([[0], np.cumsum(counts)])
        # indices of the selected messages, receiver by receiver
        msgs = np.repeat(starts - indptr[:-1], counts) + np.arange(total)
        used, row = np.unique(self.row[msgs], return_inverse=True)
        return Inbox(indptr, self.sender[msgs], self.link[msgs], row, self.payload[used])


@dataclass(frozen=True)
class Request:
    """Run ``kernel`` for ``devices`` (global ids, distinct).

    ``inputs`` are per-device arrays (first axis aligned with ``devices``);
    ``params`` are shared by all devices.
    """

    kernel: str
    devices: np.ndarray
    inputs: Mapping[str, np.ndarray] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    inbox: Inbox | None = None

    def select(self, positions: np.ndarray) -> Request:
        """The part of this request for the devices at ``positions``."""
        return Request(
            self.kernel,
            self.devices[positions],
            {k: v[positions] for k, v in self.inputs.items()},
            self.params,
            None if self.inbox is None else self.inbox.select(positions),
        )


@dataclass(frozen=True)
class HostSetup:
    """What a host is built from: its devices and the static facts of the run.

    ``nodes`` holds numeric node attributes as arrays over all nodes;
    ``link_weight[e]`` is the combination weight of directed link ``e``
    (``link_src[e] -> link_dst[e]``) and ``self_weight`` the weight of a
    node's own value, when the algorithm combines.
    """

    seed: int
    devices: np.ndarray
    n_nodes: int
    nodes: Mapping[str, np.ndarray]
    link_src: np.ndarray
    link_dst: np.ndarray
    link_weight: np.ndarray | None = None
    self_weight: np.ndarray | None = None


@dataclass(frozen=True)
class KernelCall:
    """What a kernel sees: rows ``idx`` of the host state, for global ``devices``."""

    idx: np.ndarray
    devices: np.ndarray
    inputs: Mapping[str, np.ndarray]
    params: Mapping[str, Any]
    inbox: Inbox | None
    rngs: list[np.random.Generator]
    setup: HostSetup

    @property
    def rows(self) -> np.ndarray | slice:
        """``idx``, or an equivalent slice when it is a contiguous range (a view
        instead of a copy when indexing state arrays)."""
        idx = self.idx
        if len(idx) and idx[-1] - idx[0] == len(idx) - 1 and np.all(np.diff(idx) == 1):
            return slice(int(idx[0]), int(idx[-1]) + 1)
        return idx


Kernel = Callable[[Any, KernelCall], tuple[Any, Outputs]]


class HostedAlgorithm(Protocol):
    """The host-side half of an algorithm."""

    def init_state(self, setup: HostSetup, rngs: list[np.random.Generator]) -> Any: ...

    def kernel(self, name: str) -> Kernel: ...


class HostCore:
    """Device state of one host and the kernels that update it."""

    def __init__(
        self,
        algorithm: HostedAlgorithm,
        setup: HostSetup,
        fetch: Callable[[list[Any]], list[list[Outputs]]] | None = None,
    ) -> None:
        self.algorithm = algorithm
        self.setup = setup
        self._fetch = fetch  # resolves RemotePayload sources (Ray: ray.get)
        self.local = np.full(setup.n_nodes, -1, dtype=np.int64)
        self.local[setup.devices] = np.arange(len(setup.devices))
        self.rngs = [rngs.generator(setup.seed, "device", int(d)) for d in setup.devices]
        self.state = algorithm.init_state(setup, self.rngs)

    def call(self, requests: list[Request]) -> list[Outputs]:
        outputs = []
        for r in requests:
            if r.inbox is not None and isinstance(r.inbox.payload, RemotePayload):
                if self._fetch is None:
                    raise RuntimeError("this host cannot fetch remote payloads")
                payload = r.inbox.payload.resolve(self._fetch)
                r = replace(r, inbox=replace(r.inbox, payload=payload))
            idx = self.local[r.devices]
            if np.any(idx < 0):
                raise ValueError(f"request {r.kernel!r} names devices that are not on this host")
            call = KernelCall(idx, r.devices, r.inputs, r.params, r.inbox, self.rngs, self.setup)
            self.state, out = self.algorithm.kernel(r.kernel)(self.state, call)
            outputs.append(out)
        return outputs

    def ping(self) -> int:
        return len(self.setup.devices)
