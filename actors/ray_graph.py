"""Few round trips on Ray: a Ray Compiled Graph over the hosts.

Without it, each host call is an actor method call whose message contents go
to Ray's object store, and hosts fetch them from there (about 11 ms a round
for 2 hosts, measured). With it, the driver gathers host calls into one
**execution** until it awaits an output of one of them (or a call needs the
payloads of one of them), and writes every host's requests of the execution
once, to shared-memory channels (or sockets, below): the ten clients of a
federated round, which start training at ten different times, go in one
execution instead of ten. In an execution each host first **exports** the
rows of its earlier payloads that the other hosts' requests name, then
**steps**: resolves its inbox from its own memory and the other hosts'
exports, runs its kernels and returns the small outputs (the host's side:
:mod:`actors.graph_host`; this module is the driver's). Payloads stay in
host memory, keyed by the execution that made them, until the driver's
handles to them are garbage-collected (the driver then tells the host, in a
later execution). Nothing goes through the object store.

Everything written to a channel is a ``bytes`` pickle (protocol 5, arrays
copied): Ray reads numpy arrays from a channel without copying, and a reader
that keeps such an array (a kernel storing a received model, the driver
keeping outputs) blocks the writer's next write: runs hung so (Ray 2.60).
The driver sends an execution with up to :data:`IN_FLIGHT` earlier ones not
yet read; every channel holds ``IN_FLIGHT + 2`` values (a deeper pipeline
over channels of one value each hung: hosts blocked writing outputs the
driver did not read while it waited to send).

Ray's channels wait by polling (``sched_yield`` in a loop), so a waiting
driver or host keeps a core busy: with fewer cores than processes, the
waiting takes the cores from the work. When every host is on the driver's
machine the same executions therefore go over Unix sockets, where a waiting
process sleeps (:mod:`actors.ray_sockets`; ``NETSIM_RAY_SOCKETS=0``: Ray's
channels all the same). An earlier try that only rang the hosts and the
driver through a socket, the data still going over Ray's channels, was
slower (docs/performance.md).

The default: :class:`actors.ray_backend.RayBackend` uses one for 1 to
:data:`MAX_HOSTS` hosts (``NETSIM_RAY_GRAPH=0``: ordinary calls); ``hosts="per-device"`` always
uses ordinary actor calls. Errors in kernels travel as values (an
exception inside a compiled graph breaks it, Ray 2.60), a dead actor ends the
wait with Ray's ``ActorDiedError``.
"""

from __future__ import annotations

import os
import pickle
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from actors.graph_host import Failed, remote_parts
from actors.ray_memo import SentArrays
from netsim.kernel import Request

MAX_HOSTS = 16  # more hosts: ordinary calls (every host reads every host's export)
# executions not yet read when the next one is sent: 2, so that hosts can go
# on to round r+1 while the driver reads round r (each channel has
# IN_FLIGHT + 2 buffers, so no writer waits on a reader that waits on it)
IN_FLIGHT = 2


def timeout() -> float:
    """Seconds the driver waits for one execution (``NETSIM_RAY_GRAPH_TIMEOUT``,
    default 3600: longer than any host call of a simulation should take): a
    dead actor ends the wait at once, a hung one then."""
    return float(os.environ.get("NETSIM_RAY_GRAPH_TIMEOUT", "3600"))


def enabled() -> bool:
    """Whether runs use compiled graphs: yes unless ``NETSIM_RAY_GRAPH=0``
    (on a quiet 2-core machine they cut Ray's cost per round by a quarter;
    on one busy with other work they were no faster)."""
    return os.environ.get("NETSIM_RAY_GRAPH", "1").strip().lower() not in ("0", "no", "off")


def sockets_enabled() -> bool:
    """Whether a graph whose hosts are all on the driver's machine runs over
    Unix sockets (:mod:`actors.ray_sockets`): yes unless ``NETSIM_RAY_SOCKETS=0``
    (then over Ray's channels, as across machines), nor where Python has no
    Unix sockets."""
    import socket

    if not hasattr(socket, "AF_UNIX"):
        return False
    return os.environ.get("NETSIM_RAY_SOCKETS", "1").strip().lower() not in ("0", "no", "off")


class _Token:
    """Alive while a handle to a host's payloads of one execution is: its
    finalizer tells the host to drop them."""


class Claim:
    """Alive while a host call's future is: the driver keeps the call's
    outputs until its future is gone (read or not)."""


@dataclass(eq=False)
class GraphHandle:
    """The payloads of one host call of a compiled graph: host ``host``'s
    requests ``offset``, ``offset + 1``, ... of execution ``seq`` (the call's
    request ``i`` is the execution's ``offset + i``), kept in that host's
    memory. ``token`` stays on the driver (it is not pickled)."""

    host: int
    seq: int
    offset: int = 0
    token: _Token | None = None

    def __getstate__(self) -> tuple[int, int, int]:
        return self.host, self.seq, self.offset

    def __setstate__(self, state: tuple[int, int, int]) -> None:
        self.host, self.seq, self.offset = state
        self.token = None


def _release(releases: list[list[int]], host: int, seq: int) -> None:
    releases[host].append(seq)  # sent with the next execution


def _decode(reply: Any) -> Any:
    """A host's reply: its outputs (pickled: ``bytes``, or a ``bytearray``
    read from a socket), its error, or ``None`` (no requests)."""
    if isinstance(reply, bytes | bytearray):
        return pickle.loads(reply)
    return reply if isinstance(reply, Failed) else None


@dataclass
class _Execution:
    seq: int
    refs: list[Any]
    results: list[Any] | None = None


@dataclass
class CompiledHosts:
    """The driver's side of a compiled graph over ``actors``: gathers host
    calls into the next execution, executes the graph once for them when an
    output is awaited, and reads its executions in order."""

    actors: list[Any]
    graph: Any = None
    seq: int = 0  # the execution being gathered
    batch: dict[int, list[Request]] = field(default_factory=dict)  # its requests, by host
    claimed: list[int] = field(default_factory=list)  # its calls' live claims, by host
    tokens: dict[int, _Token] = field(default_factory=dict)
    pending: deque[_Execution] = field(default_factory=deque)
    done: dict[int, list[Any]] = field(default_factory=dict)
    claims: dict[int, list[int]] = field(default_factory=dict)  # per execution and host
    releases: list[list[int]] = field(default_factory=list)
    sent_arrays: SentArrays = field(default_factory=SentArrays)

    def compile(self, sockets: bool = False) -> None:
        """Set the graph up: over Unix sockets (``sockets``: every host is
        on this machine) or over Ray's channels."""
        self.releases = [[] for _ in self.actors]
        self.claimed = [0] * len(self.actors)
        self.sent_arrays = SentArrays()
        if sockets:
            from actors.ray_sockets import SocketMesh

            self.graph = SocketMesh(self.actors)
            return
        import ray
        from ray.dag import InputNode, MultiOutputNode

        ray.get([a.graph_join.remote(h) for h, a in enumerate(self.actors)])
        with InputNode() as given:
            if len(self.actors) == 1:
                outputs = [self.actors[0].step.bind(given)]
            else:
                exports = [a.export.bind(given) for a in self.actors]
                outputs = [a.step.bind(given, *exports) for a in self.actors]
            dag = MultiOutputNode(outputs)
        self.graph = dag.experimental_compile(_max_inflight_executions=IN_FLIGHT + 2)

    def add(self, host: int, requests: list[Request]) -> tuple[GraphHandle, Claim]:
        """Queue a call of ``host`` in the execution being gathered (executing
        that first when the call needs payloads of one of its calls): its
        payloads' handle, and the claim its future holds on its outputs."""
        if self.batch and any(
            p.source.seq == self.seq for p in remote_parts(requests)
        ):  # an execution's exports come before its steps
            self.flush()
        queued = self.batch.setdefault(host, [])
        handle = GraphHandle(host, self.seq, len(queued), self.tokens.get(host))
        if handle.token is None:
            handle.token = self.tokens[host] = _Token()
            weakref.finalize(handle.token, _release, self.releases, host, self.seq)
        queued.extend(requests)
        self.claimed[host] += 1
        claim = Claim()
        weakref.finalize(claim, self._unclaim, self.seq, self.claimed, host)
        return handle, claim

    def _unclaim(self, seq: int, claimed: list[int], host: int) -> None:
        claimed[host] -= 1  # the execution's own counts, executed or not
        if seq in self.done:
            self._forget(seq)

    def _forget(self, seq: int) -> None:
        """Drop the outputs of ``seq`` that no future can read any more (a
        protocol need not read every call's outputs)."""
        outputs, claims = self.done.get(seq), self.claims[seq]
        if outputs is None:  # not read yet
            return
        for h, c in enumerate(claims):
            if not c:
                outputs[h] = None
        if not any(claims):
            del self.done[seq], self.claims[seq]

    def flush(self) -> None:
        """Execute the graph for the queued calls."""
        if not self.batch:
            return
        while len(self.pending) >= IN_FLIGHT:
            self._read_oldest()
        requests = [self.batch.get(h) for h in range(len(self.actors))]
        releases = []
        for h in range(len(self.actors)):
            releases.append(self.releases[h])
            self.releases[h] = []
        refs = self.graph.execute(self.sent_arrays.dumps((self.seq, requests, releases)))
        self.pending.append(_Execution(self.seq, list(refs)))
        self.claims[self.seq] = self.claimed
        self.batch, self.claimed, self.tokens = {}, [0] * len(self.actors), {}
        self.seq += 1

    def result(self, seq: int, host: int, offset: int, count: int) -> Any:
        """The outputs of a call: ``count`` requests from ``offset`` of
        ``host`` in execution ``seq`` (raises a host's error, or Ray's error
        when an actor died). Queued calls are sent before waiting."""
        if seq not in self.done:  # queued, or executed and not read yet
            self.flush()
        while seq not in self.done:
            self._read_oldest()
        out = self.done[seq][host]  # kept: the caller's future holds a claim
        if isinstance(out, Failed):
            raise out.error
        return out[offset : offset + count]

    def _read_oldest(self) -> None:
        execution = self.pending.popleft()
        # a dead actor closes the graph's channels, which ends the wait at once
        got = [ref.get(timeout=timeout()) for ref in execution.refs]
        self.done[execution.seq] = [_decode(g) for g in got]
        self._forget(execution.seq)

    @property
    def executions(self) -> int:
        """Executions made (calls still queued were never awaited)."""
        return self.seq

    def teardown(self) -> None:
        """Stop the graph (its actors run ordinary calls again)."""
        graph, self.graph = self.graph, None
        self.pending.clear()
        if graph is not None:
            graph.teardown()


__all__ = ["CompiledHosts", "GraphHandle", "enabled"]
