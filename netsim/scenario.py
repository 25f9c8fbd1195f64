"""A scenario: the topology with its device and link attributes, the
algorithm, the failures and the seed of one run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from netsim.errors import InputError
from netsim.failures import Failures


@dataclass(frozen=True)
class Scenario:
    """Everything one run needs. Build it in a scenario file's ``scenario(**params)``.

    ``graph`` is an undirected networkx graph on nodes ``0..N-1``; its node and
    edge attributes describe devices and links (:mod:`topologies.attributes`;
    missing ones take the ``homogeneous`` defaults). ``params`` records the
    scenario-file parameters that produced it, and ``origin`` the file's path
    and content hash (both filled in by the loader).
    """

    name: str
    graph: nx.Graph
    algorithm: Any
    seed: int = 0
    failures: Failures = field(default_factory=Failures)
    params: Mapping[str, Any] = field(default_factory=dict)
    origin: Mapping[str, str] = field(default_factory=dict)  # the scenario file, if any

    def __post_init__(self) -> None:
        if not isinstance(self.graph, nx.Graph):
            raise InputError(f"scenario {self.name!r}: graph must be a networkx graph")
        if self.graph.is_directed() or self.graph.is_multigraph():
            raise InputError(
                f"scenario {self.name!r}: graph must be an undirected nx.Graph (links are "
                f"two-way), got {type(self.graph).__name__}"
            )
        missing = [
            m
            for m in ("name", "protocol", "program", "check", "final")
            if not hasattr(self.algorithm, m)
        ]
        if missing:
            raise InputError(
                f"scenario {self.name!r}: algorithm must be a netsim algorithm (e.g. from "
                f"`algorithms`), got {type(self.algorithm).__name__} (no {missing[0]})"
            )
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise InputError(f"seed: expected an integer >= 0, got {self.seed!r}")
        if not isinstance(self.failures, Failures):
            raise InputError(f"scenario {self.name!r}: failures must be a netsim.Failures")
