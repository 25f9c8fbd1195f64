"""The inline backend: hosts live in the driver process and run calls at once.

The default, and the fastest for light kernels. ``hosts=K`` shards devices
over K in-process hosts exactly as the Ray backend would (useful to check that
results do not depend on sharding without starting Ray).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from actors.dispatch import partition
from actors.host import HostCore, HostedAlgorithm, HostSetup, Outputs, Request


class DoneFuture:
    handle = None  # outputs are local: payloads are passed as arrays

    def __init__(self, outputs: list[Outputs]) -> None:
        self._outputs = outputs

    def result(self) -> list[Outputs]:
        return self._outputs


class InlineBackend:
    name = "inline"

    def __init__(self, algorithm: HostedAlgorithm, setups: list[HostSetup], assignment: np.ndarray):
        self.assignment = assignment
        self.hosts = [HostCore(algorithm, s) for s in setups]

    @classmethod
    def start(
        cls, algorithm: HostedAlgorithm, setup: HostSetup, hosts: int | None = None
    ) -> InlineBackend:
        assignment = partition(setup.n_nodes, hosts or 1)
        return cls(algorithm, split_setup(setup, assignment), assignment)

    @property
    def n_hosts(self) -> int:
        return len(self.hosts)

    def submit(self, host: int, requests: list[Request]) -> DoneFuture:
        return DoneFuture(self.hosts[host].call(requests))

    def close(self) -> None:
        self.hosts = []


def split_setup(setup: HostSetup, assignment: np.ndarray) -> list[HostSetup]:
    """One setup per host, each with the devices ``assignment`` gives it."""
    n_hosts = int(assignment.max(initial=-1)) + 1
    return [replace(setup, devices=np.flatnonzero(assignment == h)) for h in range(n_hosts)]
