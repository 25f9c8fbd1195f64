"""The Ray backend: hosts are Ray actors, on this machine or on a Ray cluster.

``hosts=None`` puts every device on its own actor (the literal actor model);
``hosts=K`` spreads devices over K actors. Actors are spread over the cluster's
nodes. Each host call is one actor method call; its result is fetched only
when the driver consumes it. A host that dies ends the run with a
:class:`~netsim.errors.SimulationError` naming it, never a hang.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
from dataclasses import replace
from types import ModuleType
from typing import Any

import numpy as np

from actors.dispatch import partition
from actors.host import HostCore, HostedAlgorithm, HostSetup, Outputs, Request
from netsim.errors import InputError, SimulationError


def connect(
    address: str | None, num_cpus: int | None = None, runtime_env: dict[str, Any] | None = None
) -> bool:
    """Join the Ray cluster at ``address`` (or ``RAY_ADDRESS``), or start a local
    one. Returns ``True`` if this call started Ray (the caller then shuts it down).
    ``runtime_env`` (e.g. a ``working_dir``) applies to every task of the job."""
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.WARNING,
    }
    if runtime_env:
        kwargs["runtime_env"] = runtime_env
    if address is None:
        kwargs["num_cpus"] = num_cpus or os.cpu_count() or 1
    elif address != "auto":
        _probe(address)
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"--address {address}: cannot connect to a Ray cluster: {first}") from None
    return True


PROBE_TIMEOUT_S = 3.0
DEFAULT_GCS_PORT = 6379


def _probe(address: str) -> None:
    """Fail fast, with one line, when nothing listens at ``address`` (``ray.init``
    itself retries for minutes)."""
    hostport = address.split("://", 1)[-1]
    host, _, port_text = hostport.rpartition(":")
    if not host:
        host, port_text = hostport, str(DEFAULT_GCS_PORT)
    try:
        port = int(port_text)
    except ValueError:
        raise InputError(f"--address {address}: expected HOST:PORT or 'auto'") from None
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise InputError(
            f"--address {address}: no Ray cluster answers there ({reason}); "
            "start one with `ray start --head` or check the address"
        ) from None


def register_by_value(modules: list[ModuleType]) -> None:
    """Ship classes defined in scenario files to the workers by value (those
    modules cannot be imported there)."""
    from ray import cloudpickle

    for m in modules:
        cloudpickle.register_pickle_by_value(m)


class _RayHost:
    """Actor body: a :class:`HostCore` built on the worker."""

    def __init__(self, algorithm: HostedAlgorithm, setup: HostSetup, devices: np.ndarray) -> None:
        import ray

        self.core = HostCore(algorithm, replace(setup, devices=devices), fetch=ray.get)

    def call(self, requests: list[Request]) -> list[Outputs]:
        return self.core.call(requests)

    def ping(self) -> int:
        return self.core.ping()


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
    def __init__(self, ref: Any, host: int, backend: RayBackend) -> None:
        self._ref = ref
        self._host = host
        self._backend = backend

    @property
    def handle(self) -> Any:
        return self._ref

    def result(self) -> list[Outputs]:
        import ray

        try:
            out: list[Outputs] = ray.get(self._ref)
        except ray.exceptions.RayActorError as e:
            reason = _reason(e)
            raise SimulationError(
                f"Ray host {self._host} of {self._backend.n_hosts} "
                f"({_describe(self._backend.devices_of(self._host))}) died: {reason}"
            ) from None
        except ray.exceptions.RayTaskError as e:
            raise e.as_instanceof_cause() from None
        return out


class RayBackend:
    name = "ray"

    def __init__(
        self,
        algorithm: HostedAlgorithm,
        setup: HostSetup,
        hosts: int | None,
        modules: list[ModuleType] | None = None,
    ) -> None:
        import ray

        register_by_value(modules or [])
        n = setup.n_nodes
        self.assignment = np.arange(n) if hosts is None else partition(n, hosts)
        shared = ray.put(replace(setup, devices=np.empty(0, dtype=np.int64)))
        actor = ray.remote(_RayHost).options(
            max_restarts=0, max_task_retries=0, scheduling_strategy="SPREAD"
        )
        self.actors = [
            actor.remote(algorithm, shared, self.devices_of(h)) for h in range(self.n_hosts)
        ]
        try:  # wait until every host is built, so that set-up errors show here
            ray.get([a.ping.remote() for a in self.actors])  # type: ignore[attr-defined]
        except ray.exceptions.RayActorError as e:
            self.close()
            raise SimulationError(f"a Ray host failed to start: {_reason(e)}") from None
        except ray.exceptions.RayTaskError as e:
            self.close()
            raise e.as_instanceof_cause() from None

    @property
    def n_hosts(self) -> int:
        return int(self.assignment.max(initial=-1)) + 1

    def devices_of(self, host: int) -> np.ndarray:
        return np.flatnonzero(self.assignment == host)

    def submit(self, host: int, requests: list[Request]) -> RayFuture:
        ref = self.actors[host].call.remote(requests)  # type: ignore[attr-defined]
        return RayFuture(ref, host, self)

    def close(self) -> None:
        import ray

        for a in getattr(self, "actors", []):
            with contextlib.suppress(Exception):  # already gone: nothing to release
                ray.kill(a)
        self.actors = []


def shutdown() -> None:
    import ray

    ray.shutdown()
