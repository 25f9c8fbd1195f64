"""Waiting for a compiled graph's hosts without spinning.

Ray's compiled-graph channels wait by polling: a reader loops on
``sem_trywait`` and ``sched_yield`` until the value it waits for is written
(Ray 2.60, ``PlasmaObjectHeader::ReadAcquire``). A driver blocked in a
graph's ``ref.get`` so takes a core while the hosts compute, and on a machine
with fewer cores than processes it takes it from the hosts (which Ray runs
at nice 15, below the driver); hosts waiting for the driver's next
execution poll the same way, while the driver works. So, when every host of
a graph runs on the driver's machine, they talk over a :class:`Doorbell`
too (a Unix socket per host, one byte each way per execution): each host
rings when it has finished its step of an execution, then sleeps in
``recv`` until the driver releases it, which the driver does once it has
sent the next execution (so the host finds it at once) or before it reads
this one; the driver sleeps in ``recv`` until every host has rung before it
reads an execution's outputs.

A host that dies closes its socket, which ends the driver's sleep at once
(the channel read then reports the dead actor); the driver closing the
doorbell (at teardown, or when it dies) releases every host; any other wait
ends after the graph's timeout (a host then goes on, polling).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile


class Doorbell:
    """The driver's side: one connection per host, a byte per execution."""

    def __init__(self, n_hosts: int, wait_s: float) -> None:
        self.wait_s = wait_s  # the longest wait for a host's ring
        self.dir = tempfile.mkdtemp(prefix="netsim-bell-")
        self.path = os.path.join(self.dir, "s")
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(n_hosts)
        self.conns: list[socket.socket | None] = [None] * n_hosts
        self.released = 0  # executions whose hosts were let go

    def accept(self, timeout: float) -> bool:
        """Take every host's connection (each sends its index first);
        whether all came."""
        self.server.settimeout(timeout)
        try:
            for _ in self.conns:
                conn, _ = self.server.accept()
                conn.settimeout(timeout)
                index = conn.recv(1)
                conn.settimeout(self.wait_s)
                if not index or index[0] >= len(self.conns):
                    conn.close()
                    return False
                self.conns[index[0]] = conn
        except OSError:
            return False
        return all(c is not None for c in self.conns)

    def release(self, executions: int) -> None:
        """Let the hosts go past their step of every execution before
        ``executions`` (a byte per execution not yet let go)."""
        n = executions - self.released
        if n <= 0:
            return
        for h, conn in enumerate(self.conns):
            if conn is not None:
                try:
                    conn.sendall(b"\1" * n)
                except OSError:  # the host is gone: the channel read tells why
                    conn.close()
                    self.conns[h] = None
        self.released = executions

    def wait(self) -> None:
        """Sleep until every host has rung once more (or hung up)."""
        for h, conn in enumerate(self.conns):
            if conn is None:
                continue
            try:
                got = conn.recv(1)
            except TimeoutError:
                import ray

                raise ray.exceptions.RayChannelTimeoutError("no answer from a host") from None
            except OSError:  # reset: gone as well
                got = b""
            if not got:  # the host is gone: the channel read tells why
                conn.close()
                self.conns[h] = None

    def close(self) -> None:
        for conn in [*self.conns, self.server]:
            if conn is not None:
                conn.close()
        self.conns = []
        shutil.rmtree(self.dir, ignore_errors=True)


def connect(path: str, index: int, timeout: float) -> socket.socket | None:
    """A host's side: its connection to the driver's doorbell at ``path``,
    or ``None`` where there is none (another machine)."""
    if not os.path.exists(path) or index > 255:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        sock.sendall(bytes([index]))
        sock.settimeout(timeout)
    except OSError:
        sock.close()
        return None
    return sock


def ring(sock: socket.socket | None) -> socket.socket | None:
    """Tell the driver this host has finished its step of an execution, and
    sleep until the driver lets it go; the socket, or ``None`` once the
    driver has hung up (nobody to ring any more)."""
    if sock is None:
        return None
    try:
        sock.send(b"\1", socket.MSG_NOSIGNAL)
        if sock.recv(1):
            return sock
    except TimeoutError:  # no word from the driver for long: go on, polling
        return sock
    except OSError:
        pass
    sock.close()  # the driver hung up
    return None
