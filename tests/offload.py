"""A test algorithm: clients offload jobs to a server.

At each of ``starts`` (simulated seconds), every client sends the server a
request of ``request_bytes``; the server runs a job of ``job_flops`` for each
request as it arrives (on its FIFO compute queue) and sends back a reply of
``reply_bytes`` when the job is done. Records ``reply_arrival_s`` per client
and request. Small enough to check the engine's timing by hand.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, ClassVar

import networkx as nx
import numpy as np
import pandas as pd

from netsim import Final, Simulation
from netsim.kernel import HostSetup, KernelCall, Outputs, Payloads, Request


@dataclass(frozen=True)
class Offload:
    server: int = 0
    job_flops: float = 4e9
    request_bytes: int = 8
    reply_bytes: int = 8
    starts: tuple[float, ...] = (0.0,)

    name: ClassVar[str] = "offload"
    needs_connected: ClassVar[bool] = True
    combination: ClassVar[None] = None
    node_attributes: ClassVar[tuple[str, ...]] = ()

    def check(self, graph: nx.Graph, seed: int) -> None:
        return None

    @property
    def program(self) -> Offload:
        return self

    # ------------------------------------------------------------ host side
    def init_state(self, setup: HostSetup, rngs: list[np.random.Generator]) -> dict[str, int]:
        return {"served": 0}

    def kernel(self, name: str) -> Any:
        return {"ask": self._ask, "serve": self._serve}[name]

    def reset(self, state: dict[str, int], call: KernelCall) -> tuple[dict[str, int], Outputs]:
        return {"served": 0}, {}

    def cost(self, request: Request) -> np.ndarray:
        per = self.job_flops if request.kernel == "serve" else 0.0
        return np.full(len(request.devices), per)

    def _ask(self, state: dict[str, int], call: KernelCall) -> tuple[dict[str, int], Outputs]:
        return state, {
            "payload": Payloads.rows(np.zeros((len(call.idx), self.request_bytes), np.uint8))
        }

    def _serve(self, state: dict[str, int], call: KernelCall) -> tuple[dict[str, int], Outputs]:
        state["served"] += len(call.idx)
        return state, {
            "payload": Payloads.rows(np.zeros((len(call.idx), self.reply_bytes), np.uint8))
        }

    # ------------------------------------------------------------ driver side
    def protocol(self, sim: Simulation) -> Generator[Any, Any, None]:
        clients = [k for k in range(sim.n_nodes) if k != self.server]
        done = []
        for step, t in enumerate(self.starts):
            yield sim.timeout_until(t)
            for c in clients:
                if sim.is_up(c):
                    done.append(sim.env.process(self._one(sim, c, step)))
        yield sim.env.all_of(done)

    def _one(self, sim: Simulation, c: int, step: int) -> Generator[Any, Any, None]:
        ask = sim.compute([Request("ask", np.array([c]))])
        batch = sim.unicast(
            np.array([c]),
            np.array([self.server]),
            sim.now,
            ask.nbytes(0, "payload"),
            ask.payload(0, "payload"),
        )
        yield sim.timeout_until(float(batch.t_arrive[0]))
        if not len(sim.delivered(batch)) or not sim.is_up(self.server):
            return
        start = sim.now
        served = sim.compute(
            [
                Request(
                    "serve",
                    np.array([self.server]),
                    inbox=sim.inbox(batch, np.array([self.server])),
                )
            ]
        )
        yield sim.timeout_until(float(served.finish[0][0]))
        if sim.devices.failed_since(self.server, start):
            return
        reply = sim.unicast(
            np.array([self.server]),
            np.array([c]),
            sim.now,
            served.nbytes(0, "payload"),
            served.payload(0, "payload"),
        )
        yield sim.timeout_until(float(reply.t_arrive[0]))
        if len(sim.delivered(reply)):
            sim.record("reply_arrival_s", sim.now, step, node=c)

    def final(self, metrics: pd.DataFrame) -> Final:
        rows = metrics[metrics.metric == "reply_arrival_s"]
        return Final({"replies": float(len(rows))})
