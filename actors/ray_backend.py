"""The Ray backend: hosts are Ray actors, on this machine or on a Ray cluster.

By default (``hosts=None``) devices are spread over one actor per CPU of the
cluster; ``hosts=K`` over K actors; ``hosts="per-device"`` puts every device
on its own actor (the literal actor model: a worker process each, refused
when the cluster's memory could not hold them). Actors reserve next to no
CPU and are placed over the cluster's nodes in proportion to their CPUs;
devices go to hosts by :func:`netsim.assignment.assign_hosts` (graph-aware
blocks, so few messages cross hosts). Actors are borrowed from the
process's pool of warm hosts (:mod:`actors.ray_pool`) and given back when
the run closes. With up to 16 hosts (not per device; unless
``NETSIM_RAY_GRAPH=0``), the hosts of a run form a Ray Compiled Graph (:mod:`actors.ray_graph`):
one execution for the calls made until an output is awaited, message
contents passed host to host over Unix sockets when every host is on the
driver's machine (:mod:`actors.ray_sockets`), over Ray's shared-memory
channels otherwise. Otherwise each host call is one actor method call
with two results: the small outputs the driver reads, and the message
contents, which stay in Ray's object store until the hosts that receive
them fetch them. A host that
dies ends the run with a :class:`~netsim.errors.SimulationError` naming it,
never a hang.
"""

from __future__ import annotations

import contextlib
import functools
import re
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

import numpy as np

from actors.graph_host import GraphHost
from actors.host import HostCore, Reply
from actors.ray_graph import (
    MAX_HOSTS,
    CompiledHosts,
    enabled,
    sockets_enabled,
    timeout,
)
from actors.ray_pool import POOL
from actors.ray_sockets import ClosedError
from netsim.assignment import Placement, assign_hosts
from netsim.backends import Hosts
from netsim.content_cache import read_only
from netsim.errors import SimulationError
from netsim.kernel import HostProgram, HostSetup, Request
from netsim.ray_cluster import connect, host_count, ray_placement, shutdown


def register_by_value(modules: list[ModuleType]) -> None:
    """Ship classes defined in scenario files to the workers by value (those
    modules cannot be imported there)."""
    from ray import cloudpickle

    for m in modules:
        cloudpickle.register_pickle_by_value(m)


@dataclass(frozen=True)
class PayloadHandle:
    """The message contents of one host call: their object reference, and
    which actor made them in which of its calls (that actor reads its own
    recent payloads from memory instead of the object store)."""

    ref: Any
    actor: str
    seq: int


KEEP_CALLS = 8  # a host keeps the payloads of its last calls in memory


class _RayHost(GraphHost):
    """Actor body: a :class:`HostCore` built on the worker for each run that
    borrows the actor (see :mod:`actors.ray_pool`)."""

    def __init__(self) -> None:
        self.core: HostCore | None = None
        self.recent: dict[int, list[dict[str, np.ndarray]]] = {}

    def load(self, program: HostProgram, setup: HostSetup, devices: np.ndarray) -> tuple[int, str]:
        """Hold the state of ``devices`` for a new run; where this actor runs."""
        import ray

        self.core, self.recent, self.kept = None, {}, {}  # the last run's state goes first
        self.me = ray.get_runtime_context().get_actor_id()
        self.core = HostCore(program, replace(setup, devices=devices), fetch=self._fetch)
        return self.core.ping(), str(ray.get_runtime_context().get_node_id())

    def _own(self, source: PayloadHandle) -> bool:
        return source.actor == self.me and source.seq in self.recent

    def _fetch(self, sources: list[PayloadHandle]) -> list[list[dict[str, np.ndarray]]]:
        """Payloads of earlier calls: this actor's recent ones from memory
        (the very objects it returned), the others from the object store."""
        import ray

        missing = [s.ref for s in sources if not self._own(s)]
        got = iter(ray.get(missing) if missing else [])
        return [self.recent[s.seq] if self._own(s) else next(got) for s in sources]

    def unload(self) -> None:
        self.core, self.recent, self.kept = None, {}, {}

    def call(self, requests: list[Request], seq: int) -> Reply:
        assert self.core is not None, "call before load"
        meta, bulk = self.core.call(requests)
        self.recent[seq] = bulk
        self.recent.pop(seq - KEEP_CALLS, None)
        return meta, bulk


SHARE = 1e-4  # CPU a host reserves: next to none (hosts wait on the driver most of the time)


def start_actor(node: str | None) -> Any:
    """A new host actor on ``node``. It reserves :data:`SHARE` of a CPU, not
    none at all: Ray ignores node affinity for actors that reserve nothing
    (measured on Ray 2.60). The affinity is soft: a node that is gone puts
    the host elsewhere."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    where: Any = "DEFAULT" if node is None else NodeAffinitySchedulingStrategy(node, soft=True)
    actor = ray.remote(_RayHost)
    return actor.options(
        num_cpus=SHARE, max_restarts=0, max_task_retries=0, scheduling_strategy=where
    ).remote()


def _reason(error: BaseException) -> str:
    """One line for a Ray error: the final ``Type: message`` of its traceback,
    or its first line."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", x).strip() for x in str(error).splitlines()]
    lines = [x for x in lines if x]
    if not lines:
        return type(error).__name__
    last = lines[-1]
    return last if re.match(r"^[A-Za-z_.]+(Error|Exception|Exit)\b", last) else lines[0]


def _describe(devices: np.ndarray) -> str:
    if len(devices) == 1:
        return f"device {int(devices[0])}"
    if int(devices[-1]) - int(devices[0]) == len(devices) - 1:
        return f"devices {int(devices[0])}..{int(devices[-1])}"
    shown = ", ".join(str(int(d)) for d in devices[:3])
    return f"{len(devices)} devices: {shown}{', ...' if len(devices) > 3 else ''}"


class RayFuture:
    """One host call: ``read()`` gives its small outputs; ``handle`` names its payloads."""

    def __init__(
        self, host: int, backend: RayBackend, handle: Any, read: Any, claim: Any = None
    ) -> None:
        self._host, self._backend, self._handle, self._read = host, backend, handle, read
        self._meta: list[dict[str, np.ndarray]] | None = None
        self._claim = claim  # compiled graph: the call's outputs are kept while this lives

    @property
    def handle(self) -> Any:
        return self._handle

    def meta(self) -> list[dict[str, np.ndarray]]:
        if self._meta is None:
            self._meta = self._backend.guarded(self._host, self._read)
        return self._meta

    def bulk(self) -> list[dict[str, np.ndarray]]:
        raise RuntimeError("the driver does not fetch message contents from Ray hosts")


class RayBackend:
    name = "ray"

    def __init__(
        self,
        program: HostProgram,
        setup: HostSetup,
        hosts: int | None,
        modules: list[ModuleType],
        placement: Placement = "graph",
    ) -> None:
        import ray

        register_by_value(modules)
        n = setup.n_nodes
        (self.assignment,) = read_only(  # frozen: caches know it by identity
            np.arange(n)
            if hosts is None
            else assign_hosts(n, hosts, setup.link_src, setup.link_dst, placement)
        )
        self.started_ray = False
        self.chosen = "as asked"  # how the host count was chosen, for the summary
        self.failed: set[int] = set()  # hosts that died or failed: never back to the pool
        self.nodes = ray_placement(self.n_hosts)
        started_before = POOL.started
        self.actors = POOL.acquire(self.nodes, start_actor)
        shared = ray.put(replace(setup, devices=np.empty(0, dtype=np.int64)))
        try:  # load every host, so that set-up errors show here
            self.cluster_nodes = self._load(program, shared)
        except BaseException:
            self.close()
            raise
        self.actor_ids = [a._actor_id.hex() for a in self.actors]
        self.calls = [0] * self.n_hosts  # calls made to each host
        self.reused = self.n_hosts - (POOL.started - started_before)
        self.graph: CompiledHosts | None = None
        self.executions: int | None = None  # the compiled graph's, once it is closed
        self.transport = "actor calls"
        if hosts is not None and self.n_hosts <= MAX_HOSTS and enabled():
            here = str(ray.get_runtime_context().get_node_id())
            sockets = sockets_enabled() and all(node == here for node in self.cluster_nodes)
            self.transport = "sockets" if sockets else "ray channels"
            try:
                self.graph = CompiledHosts(self.actors)
                self.graph.compile(sockets)
            except BaseException:
                self.close()
                raise

    def guarded(self, host: int, read: Any) -> Any:
        """``read()``, a dead actor reported as a :class:`SimulationError`
        naming its host (``host``, unless the error names another), a
        kernel's error raised as itself."""
        import ray

        try:
            return read()
        except (ray.exceptions.RayChannelTimeoutError, TimeoutError):
            raise SimulationError(
                f"Ray hosts gave no answer in {timeout():g} s (NETSIM_RAY_GRAPH_TIMEOUT)"
            ) from None
        except (ray.exceptions.RayActorError, ray.exceptions.RayChannelError) as e:
            dead = getattr(e, "actor_id", None)
            if dead in self.actor_ids:
                host = self.actor_ids.index(dead)
            self.failed.add(host)
            raise SimulationError(
                f"Ray host {host} of {self.n_hosts} "
                f"({_describe(self.devices_of(host))}) died: {_reason(e)}"
            ) from None
        except ray.exceptions.RayTaskError as e:
            raise e.as_instanceof_cause() from None
        except ClosedError as e:  # a host left the graph without dying (a peer did)
            self.failed.add(host)
            raise SimulationError(
                f"Ray host {host} of {self.n_hosts} ({_describe(self.devices_of(host))}) "
                f"stopped: {e}"
            ) from None

    def _load(self, program: HostProgram, shared: Any) -> list[str]:
        """Load each host's devices; an actor found dead (a pooled one killed
        since its last run) is replaced by a fresh one, once."""
        import ray

        refs = [
            a.load.remote(program, shared, self.devices_of(h)) for h, a in enumerate(self.actors)
        ]
        nodes = []
        for h, ref in enumerate(refs):
            for attempt in (0, 1):
                try:
                    nodes.append(ray.get(ref)[1])
                    break
                except ray.exceptions.RayActorError as e:
                    if attempt == 1:
                        self.failed.add(h)
                        raise SimulationError(f"a Ray host failed to start: {_reason(e)}") from None
                    self.actors[h] = POOL.replace(self.nodes[h], start_actor)
                    ref = self.actors[h].load.remote(program, shared, self.devices_of(h))
                except ray.exceptions.RayTaskError as e:
                    raise e.as_instanceof_cause() from None
        return nodes

    @classmethod
    def start(
        cls,
        program: HostProgram,
        setup: HostSetup,
        *,
        hosts: Hosts = None,
        address: str | None = None,
        modules: list[ModuleType] | None = None,
        placement: Placement = "graph",
    ) -> RayBackend:
        started = connect(address)
        try:
            k, chosen = host_count(hosts, setup.n_nodes)
            backend = cls(program, setup, k, modules or [], placement)
        except BaseException:
            if started:
                POOL.clear()
                shutdown()
            raise
        backend.started_ray = started
        backend.chosen = chosen
        return backend

    @property
    def n_hosts(self) -> int:
        return int(self.assignment.max(initial=-1)) + 1

    def devices_of(self, host: int) -> np.ndarray:
        return np.flatnonzero(self.assignment == host)

    def submit(self, host: int, requests: list[Request]) -> RayFuture:
        """Call ``host`` (with a compiled graph: in the next execution, sent
        when an output of its calls is awaited)."""
        import ray

        graph = self.graph
        if graph is not None:
            handle, claim = self.guarded(host, lambda: graph.add(host, requests))
            seq, offset, count = handle.seq, handle.offset, len(requests)
            read = functools.partial(graph.result, seq, host, offset, count)
            return RayFuture(host, self, handle, read, claim)
        method: Any = self.actors[host].call
        seq = self.calls[host]
        self.calls[host] += 1
        meta, bulk = method.options(num_returns=2).remote(requests, seq)
        return RayFuture(
            host, self, PayloadHandle(bulk, self.actor_ids[host], seq), lambda: ray.get(meta)
        )

    def describe(self) -> dict[str, Any]:
        """How the host count was chosen, how many hosts ran on each cluster
        node, how many were warm actors reused from an earlier run, and how
        many executions the compiled graph made."""
        counts: dict[str, int] = {}
        for node in getattr(self, "cluster_nodes", []):
            counts[node] = counts.get(node, 0) + 1
        described = {
            "hosts_chosen": self.chosen,
            "host_transport": getattr(self, "transport", "actor calls"),
            "cluster_nodes": counts,
            "hosts_reused": int(getattr(self, "reused", 0)),
        }
        executions = self.graph.executions if self.graph is not None else self.executions
        if executions is not None:
            described["graph_executions"] = executions
        return described

    def close(self) -> None:
        """Give the live hosts back to the process's pool (Ray started by this
        run: shut it down, pool and all)."""
        import ray

        graph, self.graph = getattr(self, "graph", None), None
        if graph is not None:  # the graph runs its actors' loops: stop it first
            self.executions = graph.executions
            try:
                graph.teardown()
            except Exception:  # a broken graph: its actors are not reused
                self.failed.update(range(len(self.actors)))
        actors = getattr(self, "actors", [])
        healthy = [(a, self.nodes[h]) for h, a in enumerate(actors) if h not in self.failed]
        for h in self.failed:
            with contextlib.suppress(Exception):  # already gone: nothing to release
                ray.kill(actors[h])
        self.actors = []
        if getattr(self, "started_ray", False):
            self.started_ray = False
            POOL.clear()
            for a, _ in healthy:
                with contextlib.suppress(Exception):
                    ray.kill(a)
            shutdown()
            return
        POOL.release(healthy)


__all__ = ["RayBackend", "register_by_value"]
