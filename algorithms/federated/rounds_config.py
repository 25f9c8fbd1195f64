"""What every method on the synchronous round template
(:mod:`algorithms.federated.sync`) is configured by, and does alike: the
learning config, rounds and who takes part, the server, the target accuracy;
the checks of those fields, the federation's checks before the run, and the
accuracy summary. FedAvg, FedCode, FedDF, TAKFL and Aequa extend it.

Annotations here are evaluated (no ``from __future__ import annotations``):
the fields' types then stay resolvable from the subclasses' modules, which
need not import them (the API reference reads them there).
"""

from dataclasses import dataclass, field
from typing import ClassVar

import networkx as nx
import pandas as pd

from algorithms.base import Final
from algorithms.federated.driver import check_federation
from algorithms.federated.hooks import RoundRules, check_server
from algorithms.learning import LearningConfig, accuracy_final


@dataclass(frozen=True)
class RoundsMethod:
    """The fields a synchronous method shares (see the module docstring)."""

    learning: LearningConfig = field(default_factory=LearningConfig)
    rounds: int = 20
    participation: float = 1.0
    deadline_s: float | None = None
    over_selection: float = 0.0
    server: int = 0
    target_accuracy: float = 0.9
    idle_wait_s: float = 1.0

    needs_connected: ClassVar[bool] = True
    node_attributes: ClassVar[tuple[str, ...]] = ()
    combination: ClassVar[None] = None

    def __post_init__(self) -> None:
        self.rules()  # checks the round fields
        check_server(self.server, self.target_accuracy)

    def round_rules(self, *, edge_aggregation: bool, send: str) -> RoundRules:
        """This method's rounds, with how inner nodes and clients treat updates."""
        return RoundRules(
            rounds=self.rounds,
            participation=self.participation,
            deadline_s=self.deadline_s,
            over_selection=self.over_selection,
            idle_wait_s=self.idle_wait_s,
            edge_aggregation=edge_aggregation,
            send=send,
        )

    def rules(self) -> RoundRules:
        """Each method says how its updates travel (by default: averaged at
        inner nodes, whole weights)."""
        return self.round_rules(edge_aggregation=True, send="weights")

    def check(self, graph: nx.Graph, seed: int) -> None:
        check_federation(graph, self.learning, self.server, seed)

    def final(self, metrics: pd.DataFrame) -> Final:
        return accuracy_final(metrics, self.target_accuracy)
