"""A real two-node Ray cluster on this machine, for tests of cluster behaviour."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def _mentions(proc: Path, marker: str) -> bool:
    """Whether a process's command line or open files mention ``marker``."""
    try:
        if marker.encode() in (proc / "cmdline").read_bytes():
            return True
        return any(marker in os.readlink(fd) for fd in (proc / "fd").iterdir())
    except OSError:
        return False


def _kill_matching(marker: str) -> None:
    """Kill the processes of the cluster under the temp dir ``marker``: ours
    only. Ray renames some of its processes (``ray::DashboardAgent``), so the
    command line alone misses them; their log files do not."""
    for _ in range(5):
        pids = [
            int(p.name)
            for p in Path("/proc").iterdir()
            if p.name.isdigit() and int(p.name) != os.getpid() and _mentions(p, marker)
        ]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(OSError):  # already gone
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)


WAIT_FOR_NODES = """
import sys, time, ray
ray.init(address=sys.argv[1], logging_level="ERROR")
for _ in range(120):
    alive = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")]
    if len(alive) >= int(sys.argv[2]):
        sys.exit(0)
    time.sleep(0.5)
sys.exit(1)
"""


def _wait_for_nodes(address: str, env: dict[str, str], count: int) -> None:
    """Until the cluster shows ``count`` live nodes with CPUs (``ray start``
    returns before a new node has registered its resources)."""
    done = subprocess.run(
        [str(BIN / "python"), "-c", WAIT_FOR_NODES, address, str(count)],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, f"the cluster never showed {count} nodes"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def two_node_cluster() -> Iterator[tuple[str, dict[str, str]]]:
    """``ray start --head`` plus ``ray start --address`` on this machine, with
    token authentication (a fresh token); stopped by killing only its processes."""
    temp = tempfile.mkdtemp(prefix="nsray", dir="/tmp")  # short: Ray puts sockets under it
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env.pop("RAY_ADDRESS", None)
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus=1", f"--temp-dir={temp}", "--disable-usage-stats"]
    try:
        subprocess.run(
            [
                str(BIN / "ray"),
                "start",
                "--head",
                f"--port={port}",
                "--include-dashboard=false",
                *common,
            ],
            env=env,
            check=True,
            capture_output=True,
            timeout=180,
        )
        subprocess.run(
            [str(BIN / "ray"), "start", f"--address={address}", *common],
            env=env,
            check=True,
            capture_output=True,
            timeout=180,
        )
        _wait_for_nodes(address, env, 2)
        yield address, env
    finally:
        _kill_matching(temp)
        shutil.rmtree(temp, ignore_errors=True)
