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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from algorithms.federated.codecs import Codebook
from algorithms.federated.driver import Federation
from algorithms.federated.hooks import RoundRules, Schedule
from algorithms.federated.program import FederatedProgram
from algorithms.federated.rounds_config import RoundsMethod
from algorithms.federated.sync import SyncRounds
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
class FedCode(RoundsMethod):
    """FedCode for ``rounds`` rounds (see the module docstring)."""

    clusters: int = 64
    start_rnd: int = 2
    f1: int = 5
    f2: int = 2

    name: ClassVar[str] = "fedcode"

    def __post_init__(self) -> None:
        super().__post_init__()
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

    @property
    def program(self) -> FederatedProgram:
        return FederatedProgram(self.learning, self.server, self.codec, self.codec)

    def rules(self) -> RoundRules:
        """Inner nodes relay: codebooks alone cannot be averaged."""
        return self.round_rules(edge_aggregation=False, send="weights")

    def protocol(self, sim: Simulation) -> Generator[Any, Any, None]:
        fed = Federation(sim, self.learning, self.server, self.codec, self.codec)
        yield from SyncRounds(sim, fed, self.rules(), self.schedule).run()
