"""What an algorithm is: a driver-side protocol plus host-side kernels.

An algorithm is a frozen dataclass of hyper-parameters (it travels to Ray
hosts by pickling) with

- ``init_state(setup, rngs)`` and ``kernel(name)``: the host side
  (:class:`actors.host.HostedAlgorithm`);
- ``flops(request)``: its cost model, FLOPs per device of a request;
- ``protocol(sim)``: the SimPy process that decides what runs and what is
  sent when;
- ``final(metrics)``: the summary values of a finished run.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from actors.host import HostSetup, Kernel, Request

if TYPE_CHECKING:
    from netsim.simulation import Simulation


@dataclass(frozen=True)
class Final:
    """Summary values of a run and how each was computed."""

    values: dict[str, float]
    notes: dict[str, str] = field(default_factory=dict)


class Algorithm(Protocol):
    name: str

    @property
    def combination(self) -> str | None:
        """Combination-weight rule the algorithm needs, or ``None``."""
        ...

    @property
    def needs_connected(self) -> bool: ...

    @property
    def node_attributes(self) -> tuple[str, ...]:
        """Numeric node attributes the hosts read (validated before the run)."""
        ...

    def init_state(self, setup: HostSetup, rngs: list[np.random.Generator]) -> Any: ...

    def kernel(self, name: str) -> Kernel: ...

    def flops(self, request: Request) -> np.ndarray: ...

    def protocol(self, sim: Simulation) -> Generator[Any, Any, None]: ...

    def final(self, metrics: pd.DataFrame) -> Final: ...


def network_rows(metrics: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Network-wide rows (node == -1) of one metric, by step."""
    rows = metrics[(metrics["metric"] == metric) & (metrics["node"] == -1)]
    return rows.sort_values("step", kind="stable")
