"""A host: where the state of some devices lives and their kernels run.

:class:`HostCore` implements the kernel contract of :mod:`netsim.kernel` for
one host; the inline backend runs it in the driver process, the Ray backend
inside a Ray actor. A call returns ``(meta, bulk)`` per request: the outputs
the driver reads, and the message contents that stay on the host.
"""

from __future__ import annotations

import functools

import numpy as np

from netsim.content_cache import ContentCache
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
        self.error: Exception | None = None  # a failed call fails every later one
        self._rows: ContentCache[np.ndarray] = ContentCache()

    def _local_rows(self, r: Request) -> np.ndarray:
        """The state rows of the request's devices (read-only)."""
        idx = self.local[r.devices]
        if np.any(idx < 0):
            raise ValueError(f"request {r.kernel!r} names devices that are not on this host")
        idx.flags.writeable = False
        return idx

    def call(self, requests: list[Request]) -> Reply:
        """Run ``requests`` in order. After a kernel failed, every later call
        raises its error too: a backend that reads a call's outputs late (or
        never) still reports it at the next one it reads."""
        if self.error is not None:
            raise self.error
        try:
            return self._call(requests)
        except Exception as e:
            self.error = e
            raise

    def _kernel(self, name: str) -> Kernel:
        return self.program.reset if name == RESET else self.program.kernel(name)

    def _call(self, requests: list[Request]) -> Reply:
        meta, bulk = [], []
        for r in requests:
            inbox = r.inbox
            if inbox is not None and isinstance(inbox.payload, RemotePayload):
                if self._fetch is None:
                    raise RuntimeError("this host cannot fetch remote payloads")
                inbox = inbox.with_payload(inbox.payload.resolve(self._fetch))
            # the same (frozen) devices call after call: their rows looked up once
            idx = self._rows.get("idx", (r.devices,), functools.partial(self._local_rows, r))
            call = KernelCall(idx, r.devices, r.inputs, r.params, inbox, self.rngs, self.setup)
            self.state, out = self._kernel(r.kernel)(self.state, call)
            m, b = split_outputs(out)
            _check_expected(r, m)
            meta.append(m)
            bulk.append(b)
        return meta, bulk

    def ping(self) -> int:
        return len(self.setup.devices)


def _check_expected(request: Request, meta: dict[str, np.ndarray]) -> None:
    """The kernel's outputs are those its program said before it ran."""
    for key, said in request.expect.items():
        got = meta.get(key)
        if len(said) and (got is None or not np.array_equal(np.asarray(got), said)):
            raise ValueError(
                f"request {request.kernel!r}: output {key!r} of the kernel differs from "
                "what its program said before it ran (payload_nbytes or reported_flops)"
            )
