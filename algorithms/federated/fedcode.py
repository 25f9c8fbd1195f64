"""FedCode: communication-efficient federated learning via transferring
codebooks (Khalilian, Tsouvalas, Ozcelebi & Meratnia, 2023, arXiv
2311.09270; ``papers.md`` section 3).

FedAvg's rounds with the k-means codebook codec
(:class:`~algorithms.federated.codecs.Codebook`) in both directions and a
schedule of what each direction carries (rounds counted from 1):

- the server sends its **codebook only** when ``r > start_rnd`` and
  ``r % f1 != 0``, otherwise **compressed weights** (codebook plus a
  ``ceil(log2 K)``-bit index per weight, k-means re-run on the global model);
- clients send **compressed weights** when ``r < start_rnd`` or
  ``r % f2 == 0``, otherwise their codebook only.

A client that receives a codebook alone snaps the weights it holds (as it
last sent them, quantized) to it. When every update of a round is compressed
weights the server averages them, weighted by examples; otherwise it pools
and sorts the clients' codebooks and snaps each weight of its model to the
nearest pooled value. k-means FLOPs are charged to the device that runs it,
client or server. Inner nodes relay (codebooks alone cannot be averaged).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import networkx as nx
import pandas as pd

from algorithms.base import Final
from algorithms.federated.codecs import Codebook
from algorithms.federated.driver import Federation, check_federation
from algorithms.federated.hooks import RoundRules, Schedule, check_server
from algorithms.federated.program import FederatedProgram
from algorithms.federated.sync import SyncRounds
from algorithms.learning import LearningConfig, accuracy_final
from netsim import checks

if TYPE_CHECKING:
    from netsim.simulation import Simulation


@dataclass(frozen=True)
class FedCodeSchedule(Schedule):
    """Which rounds carry compressed weights, and which a codebook alone."""

    start_rnd: int = 2
    f1: int = 5
    f2: int = 2

    def down(self, r: int) -> str:
        return "codebook" if r > self.start_rnd and r % self.f1 != 0 else "model"

    def up(self, r: int) -> str:
        return "model" if r < self.start_rnd or r % self.f2 == 0 else "codebook"


@dataclass(frozen=True)
class FedCode:
    """FedCode for ``rounds`` rounds (see the module docstring)."""

    learning: LearningConfig = field(default_factory=LearningConfig)
    rounds: int = 20
    participation: float = 1.0
    deadline_s: float | None = None
    over_selection: float = 0.0
    server: int = 0
    target_accuracy: float = 0.9
    idle_wait_s: float = 1.0
    clusters: int = 64
    start_rnd: int = 2
    f1: int = 5
    f2: int = 2

    name: ClassVar[str] = "fedcode"
    needs_connected: ClassVar[bool] = True
    node_attributes: ClassVar[tuple[str, ...]] = ()
    combination: ClassVar[None] = None

    def __post_init__(self) -> None:
        self.rules()  # checks the round fields
        check_server(self.server, self.target_accuracy)
        checks.positive_int("K", self.clusters, minimum=2)
        checks.positive_int("start_rnd", self.start_rnd)
        checks.positive_int("f1", self.f1)
        checks.positive_int("f2", self.f2)

    @property
    def codec(self) -> Codebook:
        return Codebook(self.clusters)

    @property
    def schedule(self) -> FedCodeSchedule:
        return FedCodeSchedule(self.start_rnd, self.f1, self.f2)

    def check(self, graph: nx.Graph, seed: int) -> None:
        check_federation(graph, self.learning, self.server, seed)

    @property
    def program(self) -> FederatedProgram:
        return FederatedProgram(self.learning, self.server, self.codec, self.codec)

    def rules(self) -> RoundRules:
        """Inner nodes relay: codebooks alone cannot be averaged."""
        return RoundRules(
            rounds=self.rounds,
            participation=self.participation,
            deadline_s=self.deadline_s,
            over_selection=self.over_selection,
            idle_wait_s=self.idle_wait_s,
            edge_aggregation=False,
            send="weights",
        )

    def protocol(self, sim: Simulation) -> Generator[Any, Any, None]:
        fed = Federation(sim, self.learning, self.server, self.codec, self.codec)
        yield from SyncRounds(sim, fed, self.rules(), self.schedule).run()

    def final(self, metrics: pd.DataFrame) -> Final:
        return accuracy_final(metrics, self.target_accuracy)
