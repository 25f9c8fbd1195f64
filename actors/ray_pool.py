"""Warm Ray host actors, kept across the runs of one process.

Starting a host actor costs seconds (a worker process that imports numpy,
netsim, often torch); a simulation round costs milliseconds. So a run on the
Ray backend borrows its hosts from a process-wide :class:`HostPool` and gives
them back when it closes: the next run in the process (a notebook's second
run, the next point a sweep worker runs) loads its devices onto actors that
are already up. An actor is loaded per run (``load(program, setup,
devices)``), so nothing of one run's state reaches the next.

The pool belongs to one Ray session and one driver job: when Ray is shut down
(or re-initialized) it is dropped, never reused. An actor that died, or that
failed while a run used it, is never given back. At most :func:`idle_limit`
actors wait idle (each holds a worker process's memory); the rest are killed.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

IDLE_AT_LEAST = 8  # idle actors kept, at least (more on a cluster with more CPUs)


def _session() -> tuple[str, str]:
    """The Ray session and driver job this process is in now."""
    import ray

    context = ray.get_runtime_context()
    return context.get_session_name(), context.get_job_id()


def idle_limit() -> int:
    """Idle actors kept: one per CPU of the cluster, at least :data:`IDLE_AT_LEAST`."""
    import ray

    return max(IDLE_AT_LEAST, int(ray.cluster_resources().get("CPU", 0)))


class HostPool:
    """Idle host actors by the cluster node they run on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._session: tuple[str, str] | None = None
        self._idle: dict[str | None, list[Any]] = {}
        self.started = 0  # actors this pool started (for tests and benchmarks)

    def _check_session(self) -> None:
        """Forget every actor of an earlier Ray session (they are gone with it)."""
        now = _session()
        if now != self._session:
            self._session, self._idle = now, {}

    def acquire(self, nodes: list[str | None], start: Callable[[str | None], Any]) -> list[Any]:
        """One actor per entry of ``nodes`` (the cluster node it should run on;
        ``None``: anywhere): an idle one on that node, else ``start(node)``."""
        with self._lock:
            self._check_session()
            out = []
            for node in nodes:
                idle = self._idle.get(node)
                if idle:
                    out.append(idle.pop())
                else:
                    out.append(start(node))
                    self.started += 1
            return out

    def replace(self, node: str | None, start: Callable[[str | None], Any]) -> Any:
        """A fresh actor for ``node``, in place of one found dead."""
        with self._lock:
            self.started += 1
            return start(node)

    def release(self, actors: list[tuple[Any, str | None]]) -> None:
        """Give ``(actor, node)`` back after a run (only live, healthy ones).
        Their state is dropped at once; actors beyond the idle limit are killed."""
        import ray

        with self._lock:
            if not ray.is_initialized() or _session() != self._session:
                return  # Ray went away: the actors with it
            limit = idle_limit()
            held = sum(len(v) for v in self._idle.values())
            for actor, node in actors:
                if held < limit:
                    actor.unload.remote()
                    self._idle.setdefault(node, []).append(actor)
                    held += 1
                else:
                    with contextlib.suppress(Exception):  # already gone
                        ray.kill(actor)

    def idle(self) -> list[Any]:
        """The idle actors now (for tests)."""
        with self._lock:
            return [a for v in self._idle.values() for a in v]

    def clear(self) -> None:
        """Kill every idle actor and forget them (e.g. before Ray shuts down)."""
        import ray

        with self._lock:
            actors = [a for v in self._idle.values() for a in v]
            self._idle = {}
            if ray.is_initialized():
                for a in actors:
                    with contextlib.suppress(Exception):
                        ray.kill(a)


POOL = HostPool()  # the process's pool: Ray's actors are process-wide too

__all__ = ["POOL", "HostPool", "idle_limit"]
