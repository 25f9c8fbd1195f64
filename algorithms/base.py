"""What algorithms share: the engine's contract (:mod:`netsim.algorithm`,
:mod:`netsim.kernel`) and small helpers for summaries.

An algorithm is a frozen dataclass of hyper-parameters with ``check``,
``program`` (its host program: ``init_state``, ``kernel``, ``cost``,
``reset``), ``protocol`` and ``final``. Most algorithms here are their own
host program (``program`` returns ``self``); the federated family builds one
(:mod:`algorithms.federated`).
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd

from netsim.algorithm import Algorithm, Final
from netsim.kernel import KernelCall, Outputs, Request

__all__ = ["Algorithm", "Final", "NoChecks", "network_rows", "no_cost"]


def network_rows(metrics: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Network-wide rows (node == -1) of one metric, by step."""
    rows = metrics[(metrics["metric"] == metric) & (metrics["node"] == -1)]
    return rows.sort_values("step", kind="stable")


def no_cost(request: Request) -> np.ndarray:
    """A request that costs no simulated time (measurement, bookkeeping)."""
    return np.zeros(len(request.devices))


class NoChecks:
    """Mixin for algorithms with nothing to check beyond their own fields."""

    def check(self, graph: nx.Graph, seed: int) -> None:
        return None


def stateless_reset(state: object, call: KernelCall) -> tuple[object, Outputs]:
    """``reset`` of a program whose devices keep no state between calls."""
    return state, {}
