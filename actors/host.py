"""A host: where the state of some devices lives and their kernels run.

:class:`HostCore` implements the kernel contract of :mod:`netsim.kernel` for
one host; the inline backend runs it in the driver process, the Ray backend
inside a Ray actor. A call returns ``(meta, bulk)`` per request: the outputs
the driver reads, and the message contents that stay on the host.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from netsim.kernel import (
    RESET,
    Fetch,
    HostProgram,
    HostSetup,
    Kernel,
    KernelCall,
    RemotePayload,
    Request,
    split_outputs,
)
from netsim.streams import DeviceGenerators

Reply = tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]


class HostCore:
    """Device state of one host and the kernels that update it."""

    def __init__(self, program: HostProgram, setup: HostSetup, fetch: Fetch | None = None) -> None:
        self.program = program
        self.setup = setup
        self._fetch = fetch  # resolves RemotePayload sources (Ray: ray.get)
        self.local = np.full(setup.n_nodes, -1, dtype=np.int64)
        self.local[setup.devices] = np.arange(len(setup.devices))
        self.rngs = DeviceGenerators(setup.seed, "device", setup.devices)  # made when used
        self.state = program.init_state(setup, self.rngs)

    def _kernel(self, name: str) -> Kernel:
        return self.program.reset if name == RESET else self.program.kernel(name)

    def call(self, requests: list[Request]) -> Reply:
        meta, bulk = [], []
        for r in requests:
            if r.inbox is not None and isinstance(r.inbox.payload, RemotePayload):
                if self._fetch is None:
                    raise RuntimeError("this host cannot fetch remote payloads")
                payload = r.inbox.payload.resolve(self._fetch)
                r = replace(r, inbox=replace(r.inbox, payload=payload))
            idx = self.local[r.devices]
            if np.any(idx < 0):
                raise ValueError(f"request {r.kernel!r} names devices that are not on this host")
            call = KernelCall(idx, r.devices, r.inputs, r.params, r.inbox, self.rngs, self.setup)
            self.state, out = self._kernel(r.kernel)(self.state, call)
            m, b = split_outputs(out)
            meta.append(m)
            bulk.append(b)
        return meta, bulk

    def ping(self) -> int:
        return len(self.setup.devices)
