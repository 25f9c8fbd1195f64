"""The inline backend: hosts live in the driver process and run calls at once.

The default, and the fastest for light kernels. ``hosts=K`` shards devices
over K in-process hosts exactly as the Ray backend would (useful to check that
results do not depend on sharding without starting Ray).
"""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType
from typing import Any

import numpy as np

from actors.host import HostCore, Reply
from netsim.assignment import Placement, assign_hosts
from netsim.backends import PER_DEVICE, Hosts
from netsim.content_cache import read_only
from netsim.errors import InputError
from netsim.kernel import HostProgram, HostSetup, Request


class DoneFuture:
    handle = None  # outputs are local: payloads are passed as arrays

    def __init__(self, reply: Reply) -> None:
        self._meta, self._bulk = reply

    def meta(self) -> list[dict[str, np.ndarray]]:
        return self._meta

    def bulk(self) -> list[dict[str, np.ndarray]]:
        return self._bulk


class InlineBackend:
    name = "inline"

    def __init__(self, program: HostProgram, setups: list[HostSetup], assignment: np.ndarray):
        (self.assignment,) = read_only(assignment)  # frozen: caches know it by identity
        self.hosts = [HostCore(program, s) for s in setups]
        self._n_hosts = len(self.hosts)

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
    ) -> InlineBackend:
        """``hosts`` in-process hosts (default one; ``"per-device"``: one each),
        devices spread over them as ``placement`` says."""
        if address is not None:
            raise InputError(
                "--address joins a Ray cluster; it cannot be used with --backend inline"
            )
        k = setup.n_nodes if hosts == PER_DEVICE else min(int(hosts or 1), setup.n_nodes)
        assignment = assign_hosts(setup.n_nodes, k, setup.link_src, setup.link_dst, placement)
        return cls(program, split_setup(setup, assignment), assignment)

    @property
    def n_hosts(self) -> int:
        return self._n_hosts

    def submit(self, host: int, requests: list[Request]) -> DoneFuture:
        return DoneFuture(self.hosts[host].call(requests))

    def describe(self) -> dict[str, Any]:
        return {"hosts_chosen": "in this process"}

    def close(self) -> None:
        self.hosts = []


def split_setup(setup: HostSetup, assignment: np.ndarray) -> list[HostSetup]:
    """One setup per host, each with the devices ``assignment`` gives it."""
    n_hosts = int(assignment.max(initial=-1)) + 1
    return [replace(setup, devices=np.flatnonzero(assignment == h)) for h in range(n_hosts)]
