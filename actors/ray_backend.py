"""The Ray backend: hosts are Ray actors, on this machine or on a Ray cluster.

By default (``hosts=None``) devices are spread over one actor per CPU of the
cluster; ``hosts=K`` over K actors; ``hosts="per-device"`` puts every device
on its own actor (the literal actor model: a worker process each, refused
when the cluster's memory could not hold them). Actors reserve next to no
CPU and are placed over the cluster's nodes in proportion to their CPUs. Each host
call is one actor method call with two results: the small outputs the
driver reads, and the message contents, which stay in Ray's object store
until the hosts that receive them fetch them. A host that dies ends the run
with a :class:`~netsim.errors.SimulationError` naming it, never
a hang.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import replace
from types import ModuleType
from typing import Any

import numpy as np

from actors.host import HostCore, Reply
from netsim.backends import PER_DEVICE, Hosts
from netsim.dispatch import partition
from netsim.errors import InputError, SimulationError
from netsim.kernel import HostProgram, HostSetup, Request
from netsim.ray_cluster import connect, shutdown


def register_by_value(modules: list[ModuleType]) -> None:
    """Ship classes defined in scenario files to the workers by value (those
    modules cannot be imported there)."""
    from ray import cloudpickle

    for m in modules:
        cloudpickle.register_pickle_by_value(m)


class _RayHost:
    """Actor body: a :class:`HostCore` built on the worker."""

    def __init__(self, program: HostProgram, setup: HostSetup, devices: np.ndarray) -> None:
        import ray

        self.core = HostCore(program, replace(setup, devices=devices), fetch=ray.get)

    def call(self, requests: list[Request]) -> Reply:
        return self.core.call(requests)

    def ping(self) -> tuple[int, str]:
        import ray

        return self.core.ping(), str(ray.get_runtime_context().get_node_id())


ACTOR_BYTES = 180e6  # resident memory of a host actor's worker (184 MB measured, Ray 2.60)


def host_count(hosts: Hosts, n_devices: int) -> tuple[int | None, str]:
    """Actors to start (``None``: one per device) and how that was chosen."""
    import ray

    if hosts is None:
        cpus = sum(c for _, c in _alive_nodes()) or int(ray.cluster_resources().get("CPU", 1))
        return min(max(cpus, 1), n_devices), f"one per CPU of the cluster ({cpus})"
    if hosts == PER_DEVICE:
        memory = float(ray.cluster_resources().get("memory", float("inf")))
        need = n_devices * ACTOR_BYTES
        if need > memory:
            raise InputError(
                f"--hosts per-device: {n_devices} actors, a worker process each, would need "
                f"about {need / 1e9:.3g} GB ({ACTOR_BYTES / 1e6:.0f} MB each); the cluster "
                f"offers {memory / 1e9:.3g} GB to tasks. Spread the devices over fewer hosts "
                "(--hosts K, or the default: one per CPU)"
            )
        return None, "one per device"
    return min(int(hosts), n_devices), "as asked"


def _alive_nodes() -> list[tuple[str, int]]:
    """The cluster's live nodes and their CPUs, by node id."""
    import ray

    return sorted(
        (str(n["NodeID"]), int(n.get("Resources", {}).get("CPU", 0)))
        for n in ray.nodes()
        if n.get("Alive")
    )


def placement(n_hosts: int) -> list[Any]:
    """Where each host goes: the cluster's nodes in turn, each as many times as
    it has CPUs (so K hosts on K CPUs get one CPU each). The affinity is hard:
    a host whose node is gone fails to start with a clear error."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    slots = [node for node, cpus in _alive_nodes() for _ in range(max(1, cpus))]
    if not slots:
        return ["DEFAULT"] * n_hosts
    # interleave the nodes, so that a few hosts already cover every node
    order = sorted(range(len(slots)), key=lambda i: (slots[: i + 1].count(slots[i]), i))
    slots = [slots[i] for i in order]
    return [
        NodeAffinitySchedulingStrategy(slots[h % len(slots)], soft=True) for h in range(n_hosts)
    ]


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
    return f"devices {int(devices[0])}..{int(devices[-1])}"


class RayFuture:
    def __init__(self, refs: tuple[Any, Any], host: int, backend: RayBackend) -> None:
        self._meta_ref, self._bulk_ref = refs
        self._host = host
        self._backend = backend
        self._meta: list[dict[str, np.ndarray]] | None = None

    @property
    def handle(self) -> Any:
        return self._bulk_ref

    def _get(self, ref: Any) -> Any:
        import ray

        try:
            return ray.get(ref)
        except ray.exceptions.RayActorError as e:
            reason = _reason(e)
            raise SimulationError(
                f"Ray host {self._host} of {self._backend.n_hosts} "
                f"({_describe(self._backend.devices_of(self._host))}) died: {reason}"
            ) from None
        except ray.exceptions.RayTaskError as e:
            raise e.as_instanceof_cause() from None

    def meta(self) -> list[dict[str, np.ndarray]]:
        if self._meta is None:
            self._meta = self._get(self._meta_ref)
        return self._meta

    def bulk(self) -> list[dict[str, np.ndarray]]:
        raise RuntimeError("the driver does not fetch message contents from Ray hosts")


class RayBackend:
    name = "ray"

    def __init__(
        self, program: HostProgram, setup: HostSetup, hosts: int | None, modules: list[ModuleType]
    ) -> None:
        import ray

        register_by_value(modules)
        n = setup.n_nodes
        self.assignment = np.arange(n) if hosts is None else partition(n, hosts)
        shared = ray.put(replace(setup, devices=np.empty(0, dtype=np.int64)))
        actor = ray.remote(_RayHost)
        # Hosts wait on the driver most of the time: they reserve next to no CPU.
        # Not none at all: Ray ignores node affinity for actors that reserve
        # nothing (measured on Ray 2.60).
        share = min(1e-3, max(1e-4, sum(c for _, c in _alive_nodes()) / (2 * self.n_hosts)))
        self.actors = [
            actor.options(
                num_cpus=share,
                max_restarts=0,
                max_task_retries=0,
                scheduling_strategy=where,
            ).remote(program, shared, self.devices_of(h))
            for h, where in enumerate(placement(self.n_hosts))
        ]
        self.started_ray = False
        self.chosen = "as asked"  # how the host count was chosen, for the summary
        try:  # wait until every host is built, so that set-up errors show here
            pings = ray.get([a.ping.remote() for a in self.actors])  # type: ignore[attr-defined]
        except ray.exceptions.RayActorError as e:
            self.close()
            raise SimulationError(f"a Ray host failed to start: {_reason(e)}") from None
        except ray.exceptions.RayTaskError as e:
            self.close()
            raise e.as_instanceof_cause() from None
        self.cluster_nodes = [node for _, node in pings]

    @classmethod
    def start(
        cls,
        program: HostProgram,
        setup: HostSetup,
        *,
        hosts: Hosts = None,
        address: str | None = None,
        modules: list[ModuleType] | None = None,
    ) -> RayBackend:
        started = connect(address)
        try:
            k, chosen = host_count(hosts, setup.n_nodes)
            backend = cls(program, setup, k, modules or [])
        except BaseException:
            if started:
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
        method: Any = self.actors[host].call
        return RayFuture(method.options(num_returns=2).remote(requests), host, self)

    def describe(self) -> dict[str, Any]:
        """How the host count was chosen, and how many hosts ran on each
        cluster node."""
        counts: dict[str, int] = {}
        for node in getattr(self, "cluster_nodes", []):
            counts[node] = counts.get(node, 0) + 1
        return {"hosts_chosen": self.chosen, "cluster_nodes": counts}

    def close(self) -> None:
        import ray

        for a in getattr(self, "actors", []):
            with contextlib.suppress(Exception):  # already gone: nothing to release
                ray.kill(a)
        self.actors = []
        if getattr(self, "started_ray", False):
            self.started_ray = False
            shutdown()


__all__ = ["RayBackend", "register_by_value"]
