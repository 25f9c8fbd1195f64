"""The compiled graph's executions over Unix sockets, for hosts on the
driver's machine.

Ray's shared-memory channels wait by polling (``sched_yield`` in a loop): a
driver and two hosts waiting on each other keep three processes busy, and on
a machine with fewer cores than that they take the cores from the work
(docs/performance.md). A socket read sleeps in the kernel until its data
arrive and costs nothing meanwhile, so when every host of a run is on the
driver's node (a laptop, one machine of a cluster) the same graph runs over
sockets: the driver sends each execution's input to every host; each host
sends its export to every other host, steps, and sends its outputs back.
The hosts are the same Ray actors (started, placed, pooled and watched by
Ray); only the bytes of an execution travel outside it.

A host runs the graph in one long actor call (:func:`serve`,
like the loop a Ray Compiled Graph runs), until the driver closes its
socket. It drains every incoming socket in a thread of its own, so that no
writer ever waits on a reader that waits on it. A host that dies closes its
sockets: the driver's read ends at once, and Ray's error for that actor
names it.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import shutil
import socket
import struct
import tempfile
import threading
import time
from typing import Any, Protocol

_HEADER = struct.Struct("!cQ")  # kind (b"b": raw bytes, b"p": a pickle), length
_BUFFER = 4 << 20  # socket buffers: an execution's input or export in a few system calls
_SMALL = 1 << 16  # frames up to this size are sent with their header in one call
_CONNECT_S = 60.0  # how long the mesh may take to connect
_EOF = object()  # a closed socket, as its reader thread reports it


class ClosedError(ConnectionError):
    """The other end of a socket closed it."""


def send(sock: socket.socket, value: Any) -> None:
    """One frame: ``bytes`` as they are, anything else pickled."""
    kind, data = (b"b", value) if isinstance(value, bytes) else (b"p", pickle.dumps(value, 5))
    header = _HEADER.pack(kind, len(data))
    if len(data) <= _SMALL:  # one system call
        sock.sendall(header + data)
    else:  # no copy of a large frame
        sock.sendall(header)
        sock.sendall(data)


def _exactly(sock: socket.socket, n: int) -> bytearray:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:])
        if not k:
            raise ClosedError("the other end closed the socket")
        got += k
    return buf


def receive(sock: socket.socket) -> Any:
    """The next frame's value (raw bytes as a ``bytearray``: not copied again)."""
    kind, n = _HEADER.unpack(_exactly(sock, _HEADER.size))
    data = _exactly(sock, n)
    return data if kind == b"b" else pickle.loads(data)


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        with contextlib.suppress(OSError):  # a smaller buffer only costs system calls
            sock.setsockopt(socket.SOL_SOCKET, option, _BUFFER)
    return sock


def _connect(path: str, deadline: float) -> socket.socket:
    """Connect to ``path``, waiting for its listener to exist."""
    while True:
        sock = _socket()
        try:
            sock.connect(path)
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _close(sock: socket.socket) -> None:
    """Close ``sock``, first waking a thread blocked reading it (closing
    alone leaves that read waiting)."""
    with contextlib.suppress(OSError):  # not connected (a listener), or already gone
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def _drain(sock: socket.socket, into: queue.SimpleQueue[Any]) -> None:
    """Read frames from ``sock`` into ``into`` until it closes."""
    try:
        while True:
            into.put(receive(sock))
    except (ClosedError, OSError):
        into.put(_EOF)


class Graph(Protocol):
    """What a host runs in an execution (:class:`~actors.graph_host.GraphHost`)."""

    def export(self, sent: bytes) -> Any: ...

    def step(self, sent: bytes, *exports: Any) -> Any: ...


def serve(host: Graph, directory: str, index: int, n_hosts: int) -> int:
    """Run executions from the driver until it closes its socket, as host
    ``index`` of ``n_hosts`` whose sockets live in ``directory``; how many
    it ran."""
    deadline = time.monotonic() + _CONNECT_S
    listener = _socket()
    driver: socket.socket | None = None
    peers: dict[int, socket.socket] = {}
    try:
        listener.bind(os.path.join(directory, f"h{index}"))
        listener.listen(n_hosts)
        listener.settimeout(_CONNECT_S)
        driver = _connect(os.path.join(directory, "driver"), deadline)
        send(driver, index)
        for j in range(index):  # connect to the hosts before, accept those after
            peers[j] = _connect(os.path.join(directory, f"h{j}"), deadline)
            send(peers[j], index)
        for _ in range(index + 1, n_hosts):
            sock, _ = listener.accept()
            sock.settimeout(None)
            peers[receive(sock)] = sock
        inputs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        exports: dict[int, queue.SimpleQueue[Any]] = {j: queue.SimpleQueue() for j in peers}
        for sock, into in [(driver, inputs)] + [(peers[j], exports[j]) for j in peers]:
            threading.Thread(target=_drain, args=(sock, into), daemon=True).start()
        send(driver, "ready")
        executions = 0
        while (sent := inputs.get()) is not _EOF:
            got: list[Any] = []
            if n_hosts > 1:
                mine = host.export(sent)
                for sock in peers.values():
                    send(sock, mine)
                got = [mine if j == index else exports[j].get() for j in range(n_hosts)]
                if any(e is _EOF for e in got):  # a host is gone: the driver learns which
                    break
            send(driver, host.step(sent, *got))
            executions += 1
        return executions
    finally:
        for s in [listener, driver, *peers.values()]:
            if s is not None:
                _close(s)


class _Reply:
    """One host's outputs of one execution, read from its socket in turn."""

    def __init__(self, mesh: SocketMesh, host: int) -> None:
        self.mesh, self.host = mesh, host

    def get(self, timeout: float) -> Any:
        return self.mesh.receive(self.host, timeout)


class SocketMesh:
    """The driver's side: a socket to every host, with the same ``execute``
    and ``teardown`` as a compiled Ray graph. The sockets live in a fresh
    temporary directory that only this user can enter (``mkdtemp``: mode
    0700), so no other user of the machine can connect to them."""

    def __init__(self, actors: list[Any]) -> None:
        self.directory = tempfile.mkdtemp(prefix="netsim-")
        self.socks: list[socket.socket | None] = [None] * len(actors)
        listener = _socket()
        try:
            listener.bind(os.path.join(self.directory, "driver"))
            listener.listen(len(actors))
            listener.settimeout(1.0)
            self.serving = [
                a.serve.remote(self.directory, h, len(actors)) for h, a in enumerate(actors)
            ]
            deadline = time.monotonic() + _CONNECT_S
            while any(s is None for s in self.socks):
                try:
                    sock, _ = listener.accept()
                except TimeoutError:
                    self._check_serving()
                    if time.monotonic() > deadline:
                        raise TimeoutError("Ray hosts did not connect their sockets") from None
                    continue
                sock.settimeout(_CONNECT_S)
                self.socks[receive(sock)] = sock
            for h in range(len(actors)):
                if self.receive(h, _CONNECT_S) != "ready":
                    raise RuntimeError(f"Ray host {h} did not set up its sockets")
        except BaseException:
            self.teardown()
            raise
        finally:
            listener.close()

    def execute(self, sent: bytes) -> list[_Reply]:
        for sock in self.socks:
            assert sock is not None
            send(sock, sent)
        return [_Reply(self, h) for h in range(len(self.socks))]

    def receive(self, host: int, timeout: float) -> Any:
        """Host ``host``'s next frame; a host that closed its socket raises
        Ray's error for its actor (or says it closed)."""
        sock = self.socks[host]
        assert sock is not None
        sock.settimeout(timeout)
        try:
            return receive(sock)
        except (ClosedError, ConnectionResetError):
            self._check_serving(wait=5.0)
            raise ClosedError(f"Ray host {host} closed its connection") from None

    def _check_serving(self, wait: float = 0.0) -> None:
        """Raise the error of a host whose ``serve`` ended (a dead actor)."""
        import ray

        done, _ = ray.wait(self.serving, num_returns=len(self.serving), timeout=wait)
        for ref in done:
            ray.get(ref)

    def teardown(self) -> None:
        """Close the sockets (the hosts' loops end) and wait for the hosts."""
        import ray

        for sock in self.socks:
            if sock is not None:
                _close(sock)
        self.socks = [None] * len(self.socks)
        try:
            ray.get(getattr(self, "serving", []), timeout=_CONNECT_S)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


__all__ = ["SocketMesh", "serve"]
