"""What an algorithm is, for the engine: explicit parts, nothing probed.

An algorithm is a frozen config (it travels to Ray hosts by pickling) with

- ``check(graph, seed)``: validation before any host starts (data shapes,
  the server's id, ...); raises :class:`~netsim.errors.InputError`;
- ``program``: its host program (:class:`~netsim.kernel.HostProgram`:
  ``init_state``, kernels, their ``cost``, and ``reset``);
- ``protocol(sim)``: the SimPy process in the driver that decides what runs
  and what is sent when;
- ``final(metrics)``: the summary values of a finished run and how each was
  computed.

and three facts the runner needs before it builds anything: whether it
needs a connected graph, which combination-weight rule it uses (if any),
and which numeric node attributes its hosts read.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import networkx as nx
import pandas as pd

from netsim.kernel import HostProgram

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
    def needs_connected(self) -> bool: ...

    @property
    def combination(self) -> str | None:
        """Combination-weight rule the algorithm needs, or ``None``."""
        ...

    @property
    def node_attributes(self) -> tuple[str, ...]:
        """Numeric node attributes the hosts read (validated before the run)."""
        ...

    def check(self, graph: nx.Graph, seed: int) -> None: ...

    @property
    def program(self) -> HostProgram: ...

    def protocol(self, sim: Simulation) -> Generator[Any, Any, None]: ...

    def final(self, metrics: pd.DataFrame) -> Final: ...
