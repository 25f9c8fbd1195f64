"""Federated averaging (McMahan et al., "Communication-efficient learning of
deep networks from decentralized data", AISTATS 2017) on simulated devices.

The server is a node of the topology; models and updates travel along a BFS
tree rooted at it (:mod:`algorithms.federated.routing`): one hop on a star,
through the edge aggregators on the two-tier edge-cloud hierarchy. Clients
are the tree's leaves, each training the model of its prototype. Rounds
follow :mod:`algorithms.federated.sync`; the server averages the updates it
received, weighted by examples, per prototype.

Any codec can compress the uplink (``up``); the downlink (``down``) carries
models, so a codec that only encodes updates (QSGD, top-k) cannot be used
there. With an update codec, clients send their change and the server adds
the average change to the model it sent.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import networkx as nx
import pandas as pd

from algorithms.base import Final
from algorithms.federated.codecs import Codec, Identity
from algorithms.federated.driver import Federation, check_federation
from algorithms.federated.hooks import RoundRules, Schedule, check_server
from algorithms.federated.program import FederatedProgram
from algorithms.federated.sync import SyncRounds
from algorithms.learning import LearningConfig, accuracy_final
from netsim.errors import InputError

if TYPE_CHECKING:
    from netsim.simulation import Simulation


def check_codecs(up: Codec, down: Codec) -> None:
    if down.target == "delta":
        raise InputError(
            f"codec {down.name}: it encodes updates, not models; it cannot carry the "
            "server's model on the downlink"
        )


@dataclass(frozen=True)
class FedAvg:
    """Federated averaging for ``rounds`` rounds (see the module docstring)."""

    learning: LearningConfig = field(default_factory=LearningConfig)
    rounds: int = 20
    participation: float = 1.0
    deadline_s: float | None = None
    over_selection: float = 0.0
    server: int = 0
    target_accuracy: float = 0.9
    idle_wait_s: float = 1.0
    edge_aggregation: bool = True
    up: Codec = field(default_factory=Identity)
    down: Codec = field(default_factory=Identity)

    name: ClassVar[str] = "fedavg"
    needs_connected: ClassVar[bool] = True
    node_attributes: ClassVar[tuple[str, ...]] = ()
    combination: ClassVar[None] = None

    def __post_init__(self) -> None:
        self.rules()  # checks the round fields
        check_server(self.server, self.target_accuracy)
        check_codecs(self.up, self.down)

    def check(self, graph: nx.Graph, seed: int) -> None:
        check_federation(graph, self.learning, self.server, seed)

    @property
    def program(self) -> FederatedProgram:
        return FederatedProgram(self.learning, self.server, self.up, self.down)

    def rules(self) -> RoundRules:
        return RoundRules(
            rounds=self.rounds,
            participation=self.participation,
            deadline_s=self.deadline_s,
            over_selection=self.over_selection,
            idle_wait_s=self.idle_wait_s,
            edge_aggregation=self.edge_aggregation,
            send="delta" if self.up.target == "delta" else "weights",
        )

    def protocol(self, sim: Simulation) -> Generator[Any, Any, None]:
        fed = Federation(sim, self.learning, self.server, self.up, self.down)
        yield from SyncRounds(sim, fed, self.rules(), Schedule()).run()

    def final(self, metrics: pd.DataFrame) -> Final:
        return accuracy_final(metrics, self.target_accuracy)
