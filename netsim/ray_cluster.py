"""Joining or starting a Ray cluster, for the Ray backend and for sweeps;
its live nodes, how many hosts a run gets, and which node each goes on.

``ray`` is imported where it is used: a run on the inline backend never
loads it.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from typing import Any, NoReturn

from netsim.backends import PER_DEVICE, Hosts
from netsim.errors import InputError, SimulationError

PROBE_TIMEOUT_S = 3.0
GCS_PROBE_TIMEOUT_S = 8.0
DEFAULT_GCS_PORT = 6379


def connect(
    address: str | None, num_cpus: int | None = None, runtime_env: dict[str, Any] | None = None
) -> bool:
    """Join the Ray cluster at ``address`` (``auto``: ``RAY_ADDRESS``, else the
    cluster running on this machine), or at ``RAY_ADDRESS``, or start a local
    one. Returns ``True`` if this call started Ray (the caller then shuts it down).
    ``runtime_env`` (e.g. a ``working_dir``) applies to every task of the job."""
    import ray

    if ray.is_initialized():
        return False
    if address in (None, "auto") and os.environ.get("RAY_ADDRESS"):
        address = os.environ["RAY_ADDRESS"]  # as Ray's own tools read it
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
    import signal

    sigterm = signal.getsignal(signal.SIGTERM)
    quiet = logging.getLogger(TOKEN_LOGGER)
    notice = _TokenNotice()
    if address is None:  # netsim starts it: token authentication is on, as Ray sets it
        quiet.addFilter(notice)  # ... without Ray saying so on every run
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if address is None:
            raise SimulationError(f"cannot start a local Ray instance: {first}") from None
        raise InputError(f"--address {address}: cannot connect to a Ray cluster: {first}") from None
    finally:
        quiet.removeFilter(notice)
    _restore_sigterm(sigterm)
    return True


def _restore_sigterm(handler: Any) -> None:
    """``ray.init`` replaces SIGTERM's handler (its core dumps the stack, its
    driver exits 15); put back the one set before it (netsim's command line:
    clean up, exit 143)."""
    import signal
    import threading

    if callable(handler) and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"


class _TokenNotice(logging.Filter):
    """Drops Ray's notice that a new local instance has token authentication on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Token authentication is enabled" not in record.getMessage()


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
        _not_ray(address, e.strerror or type(e).__name__)
    # something listens: ask it for its cluster id, once, in a child process
    # with a deadline (ray.init retries for about 20 s, printing a warning each
    # time, and a peer that hangs up can hold one attempt for 40 s)
    probe = (
        "import sys\n"
        "from ray._raylet import GcsClient\n"
        "try:\n"
        f"    GcsClient(address={f'{host}:{port}'!r}, cluster_id=None)\n"
        "except Exception as e:\n"
        "    auth = 'Authentication' in type(e).__name__ or 'Unauthenticated' in str(e)\n"
        "    print('auth' if auth else (str(e).strip().splitlines() or [type(e).__name__])[0])\n"
        "    sys.exit(0 if auth else 3)\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            timeout=GCS_PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        _not_ray(address, f"no answer from a Ray GCS within {GCS_PROBE_TIMEOUT_S:g} s")
    if done.returncode != 0:
        _not_ray(address, done.stdout.strip() or f"exit status {done.returncode}")


def _not_ray(address: str, reason: str) -> NoReturn:
    raise InputError(
        f"--address {address}: no Ray cluster answers there ({reason}); "
        "start one with `ray start --head` or check the address"
    )


def shutdown() -> None:
    import ray

    ray.shutdown()


def alive_nodes() -> list[tuple[str, int]]:
    """The cluster's live nodes and their CPUs, by node id."""
    import ray

    return sorted(
        (str(n["NodeID"]), int(n.get("Resources", {}).get("CPU", 0)))
        for n in ray.nodes()
        if n.get("Alive")
    )


def ray_placement(n_hosts: int) -> list[str | None]:
    """The node each host goes on: the cluster's nodes in turn, each as many
    times as it has CPUs (so K hosts on K CPUs get one CPU each); ``None``
    where the cluster names no node."""
    slots = [node for node, cpus in alive_nodes() for _ in range(max(1, cpus))]
    if not slots:
        return [None] * n_hosts
    # interleave the nodes, so that a few hosts already cover every node
    order = sorted(range(len(slots)), key=lambda i: (slots[: i + 1].count(slots[i]), i))
    slots = [slots[i] for i in order]
    return [slots[h % len(slots)] for h in range(n_hosts)]


ACTOR_BYTES = 180e6  # resident memory of a host actor's worker (184 MB measured, Ray 2.60)


def host_count(hosts: Hosts, n_devices: int) -> tuple[int | None, str]:
    """Actors to start (``None``: one per device) and how that was chosen."""
    import ray

    if hosts is None:
        cpus = sum(c for _, c in alive_nodes()) or int(ray.cluster_resources().get("CPU", 1))
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
