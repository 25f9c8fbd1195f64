"""The kernel contract: what the driver sends a host, and what comes back.

The driver sends a host one call per timestamp: a list of :class:`Request`,
each naming a kernel, the devices it runs for, their per-device inputs and the
messages delivered to them (:class:`Inbox`). The host runs the requests in
order and returns one output mapping per request, rows aligned with the
request's devices.

A kernel is a function ``(state, call) -> (state, outputs)`` over the arrays
of the host's devices (structure of arrays); ``call.idx`` selects the rows.
A device's result depends only on its own state, inputs, messages and random
stream, never on which other devices share its host.

Outputs are of two kinds. Small per-device values (errors, accuracies,
counts) are plain arrays: the driver reads them. Message contents are
:class:`Payloads`: their content stays on the host that produced it (on Ray,
in the object store) and travels host to host; the driver sees only each
row's exact encoded size, under ``"<key>.nbytes"``.

Backends (``actors``) implement this contract; algorithms write kernels
against it. Neither imports the other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from netsim.content_cache import ContentCache, read_only
from netsim.payload_rows import take_rows

Outputs = dict[str, Any]  # str -> np.ndarray (read by the driver) or Payloads (kept on hosts)
NBYTES = ".nbytes"  # suffix of the driver-visible size entry of a payload output


@dataclass(frozen=True)
class Payloads:
    """Message contents produced by a kernel: row ``i`` is what device ``i`` of
    the request sends, ``nbytes[i]`` its exact size on the wire (packed bits
    rounded up to whole bytes).

    ``data`` is an array whose first axis is the row (rows of one shape), or a
    1-D object array of per-row values (ragged or encoded payloads).
    """

    data: np.ndarray
    nbytes: np.ndarray

    def __post_init__(self) -> None:
        if len(self.data) != len(self.nbytes):
            raise ValueError(f"payloads: {len(self.data)} rows but {len(self.nbytes)} sizes")

    @classmethod
    def rows(cls, array: np.ndarray) -> Payloads:
        """Each row of ``array`` as a message of its own raw bytes."""
        array = np.asarray(array)
        row_bytes = array[0].nbytes if len(array) else 0
        return cls(array, np.full(len(array), row_bytes, dtype=np.int64))

    @classmethod
    def objects(cls, items: list[Any], nbytes: list[int] | np.ndarray) -> Payloads:
        """Per-row values of any kind, with their encoded sizes."""
        data = np.empty(len(items), dtype=object)
        data[:] = items  # an object array, even when the items are arrays of one shape
        return cls(data, np.asarray(nbytes, dtype=np.int64))


def split_outputs(outputs: Outputs) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(meta, bulk)``: what the driver reads (plain outputs and payload sizes),
    and the payload contents that stay on the host."""
    meta: dict[str, np.ndarray] = {}
    bulk: dict[str, np.ndarray] = {}
    for key, value in outputs.items():
        if isinstance(value, Payloads):
            bulk[key] = value.data
            meta[key + NBYTES] = value.nbytes
        else:
            meta[key] = value
    return meta, bulk


@dataclass(frozen=True)
class PayloadPart:
    """Rows ``rows`` of payload ``key`` of request ``request`` of a host call;
    ``source`` is that call's payload handle (on Ray, an object reference)."""

    source: Any
    request: int
    key: str
    rows: np.ndarray


Fetch = Callable[[list[Any]], list[list[dict[str, np.ndarray]]]]


@dataclass(frozen=True)
class RemotePayload:
    """Message contents left where they were produced: the concatenation of
    ``parts``, fetched by the host that receives them (host to host through
    Ray's object store, never through the driver)."""

    parts: tuple[PayloadPart, ...]

    def __len__(self) -> int:
        return sum(len(p.rows) for p in self.parts)

    def __getitem__(self, rows: np.ndarray) -> RemotePayload:
        """The rows ``rows`` of the concatenation (grouped by part; in their
        order within a part)."""
        rows = np.asarray(rows)
        mine = _PART_ROWS.get(
            "parts", (rows, *(p.rows for p in self.parts)), lambda: read_only(*self._rows(rows))
        )
        return RemotePayload(
            tuple(
                PayloadPart(p.source, p.request, p.key, r)
                for p, r in zip(self.parts, mine, strict=True)
                if len(r)
            )
        )

    def _rows(self, rows: np.ndarray) -> list[np.ndarray]:
        """Per part, the rows of its payload that ``rows`` name."""
        offsets = np.cumsum([0] + [len(p.rows) for p in self.parts])
        if len(rows) > 1 and np.any(rows[1:] < rows[:-1]):  # each part's rows by a mask
            part = np.searchsorted(offsets, rows, side="right") - 1
            pieces = [rows[part == g] for g in range(len(self.parts))]
        else:  # ascending (a selection's payload rows): a range of them per part
            bounds = np.searchsorted(rows, offsets).tolist()
            pieces = [rows[bounds[g] : bounds[g + 1]] for g in range(len(self.parts))]
        return [
            p.rows[mine - offsets[g]]
            for g, (p, mine) in enumerate(zip(self.parts, pieces, strict=True))
        ]

    def resolve(self, fetch: Fetch) -> np.ndarray:
        """The rows as one array; ``fetch`` turns payload handles into the
        payload outputs of their calls."""
        if not self.parts:
            return np.empty(0)
        sources = list({id(p.source): p.source for p in self.parts}.values())
        fetched = dict(zip((id(s) for s in sources), fetch(sources), strict=True))
        # each part as (array, row numbers in it): a host that keeps only some
        # rows of a remote payload says where they are (``locate``)
        located = []
        for p in self.parts:
            array = fetched[id(p.source)][p.request][p.key]
            located.append(array.locate(p.rows) if hasattr(array, "locate") else (array, p.rows))
        return take_rows(located)


@dataclass(frozen=True)
class Inbox:
    """Messages delivered to the devices of a request, grouped by receiver.

    Receiver ``i`` (in the request's device order) got messages
    ``indptr[i]:indptr[i+1]``; message ``j`` came from ``sender[j]`` over link
    ``link[j]`` (``-1``: not over a link, e.g. a measurement) and carries
    ``payload[row[j]]``. On its way to a Ray host the payload may be a
    :class:`RemotePayload`; kernels always see an array.
    """

    indptr: np.ndarray
    sender: np.ndarray
    link: np.ndarray
    row: np.ndarray
    payload: Any  # np.ndarray, or RemotePayload until the host resolves it

    @classmethod
    def gather(cls, receivers: int, payload: Any, rows: np.ndarray, sender: np.ndarray) -> Inbox:
        """Every one of ``receivers`` gets the same messages: rows ``rows`` of
        ``payload``, from ``sender`` (not over links)."""
        k = len(rows)
        indptr = np.arange(receivers + 1, dtype=np.int64) * k
        msgs = np.tile(np.arange(k), receivers)
        return cls(
            indptr,
            np.tile(np.asarray(sender, dtype=np.int64), receivers),
            np.full(receivers * k, -1, dtype=np.int64),
            msgs,
            payload[np.asarray(rows)] if k else payload[np.zeros(0, dtype=np.int64)],
        )

    def counts(self) -> np.ndarray:
        return np.diff(self.indptr)

    def with_payload(self, payload: Any) -> Inbox:
        """The same messages over ``payload`` (e.g. remote rows resolved)."""
        return Inbox(self.indptr, self.sender, self.link, self.row, payload)

    def receiver(self) -> np.ndarray:
        """Per message, the index of its receiver in the request."""
        return np.repeat(np.arange(len(self.indptr) - 1), self.counts())

    def messages(self, i: int) -> np.ndarray:
        """The contents of receiver ``i``'s messages, in order."""
        return self.payload[self.row[self.indptr[i] : self.indptr[i + 1]]]

    def select(self, positions: np.ndarray) -> Inbox:
        """The inbox of the receivers at ``positions`` (in that order), with only
        the payload rows they need."""
        positions = np.asarray(positions)
        # a synchronous protocol splits the same inbox over the same hosts
        # round after round: a byte comparison instead of the computation
        indptr, sender, link, row, used = _SELECTIONS.get(
            len(self.payload),
            (positions, self.indptr, self.row, self.sender, self.link),  # unequal: early
            lambda: read_only(*_select(self, positions)),
        )
        return Inbox(indptr, sender, link, row, self.payload[used])


def _select(inbox: Inbox, positions: np.ndarray) -> tuple[np.ndarray, ...]:
    """``indptr, sender, link, row`` of the receivers at ``positions``, and
    the payload rows they use (``used``, ascending; ``row`` indexes them)."""
    counts = inbox.counts()[positions]
    starts = inbox.indptr[:-1][positions]
    total = int(counts.sum())
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    # indices of the selected messages, receiver by receiver
    msgs = np.repeat(starts - indptr[:-1], counts) + np.arange(total)
    rows = inbox.row[msgs]
    # the payload rows they use, ascending, and each message's among them
    # (a mark per payload row: O(rows + messages), no sort)
    mark = np.zeros(len(inbox.payload), dtype=bool)
    mark[rows] = True
    used = np.flatnonzero(mark)
    renumber = np.cumsum(mark) - 1
    return indptr, inbox.sender[msgs], inbox.link[msgs], renumber[rows], used


_SELECTIONS: ContentCache[tuple[np.ndarray, ...]] = ContentCache()
_PART_ROWS: ContentCache[tuple[np.ndarray, ...]] = ContentCache()
_GATHERS: ContentCache[tuple[np.ndarray, ...]] = ContentCache()


@dataclass(frozen=True)
class Request:
    """Run ``kernel`` for ``devices`` (global ids, distinct).

    ``inputs`` are per-device arrays (first axis aligned with ``devices``);
    ``params`` are shared by all devices. Neither carries message contents:
    those arrive in ``inbox``. ``expect``: per-device outputs the driver
    used before the kernel ran (its program said them in advance); the host
    checks the kernel's outputs against them.
    """

    kernel: str
    devices: np.ndarray
    inputs: Mapping[str, np.ndarray] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    inbox: Inbox | None = None
    expect: Mapping[str, np.ndarray] = field(default_factory=dict)

    def select(self, positions: np.ndarray) -> Request:
        """The part of this request for the devices at ``positions``."""
        positions = np.asarray(positions)
        # the same devices and sizes round after round: the same read-only
        # arrays, which pickle as references (actors.ray_memo) without a look
        devices, *expect = _GATHERS.get(
            ("select", *self.expect),
            (positions, self.devices, *self.expect.values()),
            lambda: read_only(
                self.devices[positions], *(v[positions] for v in self.expect.values())
            ),
        )
        return Request(
            self.kernel,
            devices,
            {k: v[positions] for k, v in self.inputs.items()},
            self.params,
            None if self.inbox is None else self.inbox.select(positions),
            dict(zip(self.expect, expect, strict=True)),
        )


RESET = "reset"  # the request the engine sends to a device that restarts (``on_recover="restart"``)


@dataclass(frozen=True)
class HostSetup:
    """What a host is built from: its devices and the static facts of the run.

    ``nodes`` holds the node attributes present on every node as arrays over
    all nodes: numbers as float arrays, anything else (e.g. a device's model
    ``prototype``) as object arrays. ``link_weight[e]`` is the combination
    weight of directed link ``e`` (``link_src[e] -> link_dst[e]``) and
    ``self_weight`` the weight of a node's own value, when the algorithm
    combines.
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
        if not (len(idx) and idx[-1] - idx[0] == len(idx) - 1):
            return idx
        # kept for the same (frozen) idx: a host's devices, call after call
        span = _SPANS.get("span", (idx,), lambda: _span(idx))
        return idx if span is None else span


def _span(idx: np.ndarray) -> slice | None:
    """``idx`` as a slice, when it is an ascending range."""
    if np.all(np.diff(idx) == 1):
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return None


_SPANS: ContentCache[slice | None] = ContentCache()


Kernel = Callable[[Any, KernelCall], tuple[Any, Outputs]]


class HostProgram(Protocol):
    """The host-side half of an algorithm: pickled to every host.

    - ``init_state``: the state of the host's devices, built on the host;
    - ``kernel(name)``: the kernel a request names;
    - ``reset``: what a device that restarts from scratch does
      (``on_recover="restart"``); the engine sends it as :data:`RESET`;
    - ``cost(request)``: FLOPs per device of a request, read by the driver
      when the request is submitted (the time rule: ``flops / compute_flops``);
    - optionally ``payload_nbytes(request)``: the exact sizes of the payloads
      the request will output, by key, when they are known before it runs
      (fixed-size rows), and ``reported_flops(request)``: the
      ``reported_flops`` it will output, when known (``None``: not known);
      the driver then goes on without waiting for the hosts
      (:meth:`netsim.simulation.Simulation.compute`), and the host checks
      the kernel's outputs against them.
    """

    def init_state(self, setup: HostSetup, rngs: list[np.random.Generator]) -> Any: ...

    def kernel(self, name: str) -> Kernel: ...

    def reset(self, state: Any, call: KernelCall) -> tuple[Any, Outputs]: ...

    def cost(self, request: Request) -> np.ndarray: ...
