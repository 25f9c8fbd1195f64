"""Test scenario: consensus whose Ray hosts exit at their first combination
step (after the initial calls), as a crashed machine would.

The algorithm is defined here, in a scenario file, on purpose: it also shows
that algorithms defined in scenario files reach Ray workers (by value)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

import netsim
import topologies
from algorithms import AverageConsensus
from netsim.kernel import Kernel, KernelCall, Request


@dataclass(frozen=True)
class CrashingConsensus:
    inner: AverageConsensus
    driver_pid: int = field(default_factory=os.getpid)
    name: ClassVar[str] = "crashing_consensus"
    needs_connected: ClassVar[bool] = True
    node_attributes: ClassVar[tuple[str, ...]] = ()

    @property
    def combination(self) -> str:
        return self.inner.combination

    def check(self, graph: Any, seed: int) -> None:
        self.inner.check(graph, seed)

    @property
    def program(self) -> CrashingConsensus:
        return self

    def init_state(self, setup: Any, rngs: Any) -> Any:
        return self.inner.init_state(setup, rngs)

    def reset(self, state: Any, call: KernelCall) -> Any:
        return self.inner.reset(state, call)

    def kernel(self, name: str) -> Kernel:
        inner = self.inner.kernel(name)
        if name != "step":
            return inner

        def step(state: Any, call: KernelCall) -> Any:
            if os.getpid() != self.driver_pid:  # never kill the test process itself
                os._exit(1)
            return inner(state, call)

        return step

    def cost(self, request: Request) -> Any:
        return self.inner.cost(request)

    def protocol(self, sim: Any) -> Any:
        return self.inner.protocol(sim)

    def final(self, metrics: Any) -> Any:
        return self.inner.final(metrics)


def scenario(nodes: int = 6, seed: int = 0) -> netsim.Scenario:
    graph = topologies.build("ring", nodes, seed=seed)
    algo = CrashingConsensus(AverageConsensus(iterations=20))
    return netsim.Scenario(name="crashing", graph=graph, algorithm=algo, seed=seed)
