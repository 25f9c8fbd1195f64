"""TAKFL: task arithmetic knowledge integration across device prototypes
(Morafah, Kungurtsev, Chang, Chen & Lin, NeurIPS 2024, arXiv 2409.18461;
``papers.md`` section 5), and FedDF (Lin, Kong, Stich & Jaggi, NeurIPS 2020),
the ensemble-distillation baseline.

Both are FedAvg's rounds (:mod:`algorithms.federated.sync`): each prototype's
clients train its own model, and the server averages each prototype's
updates. Then the server transfers knowledge between prototypes on its own
host, as one job on its compute queue (:mod:`algorithms.federated.transfer`):

- FedDF distils each prototype's model toward the mean logits of all
  prototypes' ensembles;
- TAKFL distils a copy of each student toward each prototype's ensemble on
  its own (temperature ``T``, self-regularization toward the student's own
  logits), and merges the task vectors with coefficients chosen per student
  (``lambdas="uniform"``: the paper's ``no_tuning``; ``"heuristic"``: the
  candidate with the best accuracy on the server's labelled validation split).

Per-prototype FedAvg, the baseline without transfer, is
:class:`~algorithms.federated.FedAvg` with a learning config of several
prototypes. The server needs the data spec's ``public_fraction`` (and, for
the heuristic, ``validation_fraction``).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from algorithms.federated.codecs import Identity
from algorithms.federated.driver import Federation
from algorithms.federated.hooks import RoundRules
from algorithms.federated.program import FederatedProgram
from algorithms.federated.rounds_config import RoundsMethod
from algorithms.federated.sync import SyncRounds
from algorithms.federated.transfer import KnowledgeTransfer, TransferConfig
from netsim.errors import InputError

if TYPE_CHECKING:
    from netsim.simulation import Simulation


@dataclass(frozen=True)
class _Distilling(RoundsMethod):
    """What FedDF and TAKFL share: FedAvg's rounds plus a transfer step."""

    temperature: float = 3.0
    distill_epochs: int = 5
    distill_lr: float = 1e-3
    distill_batch_size: int = 128

    name: ClassVar[str]

    def __post_init__(self) -> None:
        super().__post_init__()
        self.transfer()  # checks the distillation fields
        if self.learning.engine != "torch":
            raise InputError(
                f"engine {self.learning.engine}: {self.name} distils with torch; "
                "give the learning config engine torch"
            )
        if self.learning.data.public_fraction <= 0:
            raise InputError(
                f"{self.name}: the server distils on a public split; give the data spec "
                "a public_fraction > 0"
            )

    def transfer(self) -> TransferConfig:
        """The server's transfer step (each method says how)."""
        raise NotImplementedError

    def rules(self) -> RoundRules:
        """Inner nodes relay: a teacher is the mean of its clients' own models."""
        return self.round_rules(edge_aggregation=False, send="weights")

    @property
    def program(self) -> FederatedProgram:
        return FederatedProgram(
            self.learning, self.server, Identity(), Identity(), transfer=self.transfer()
        )

    def protocol(self, sim: Simulation) -> Generator[Any, Any, None]:
        fed = Federation(sim, self.learning, self.server, Identity(), Identity())
        step = KnowledgeTransfer(self.transfer())
        yield from SyncRounds(sim, fed, self.rules(), step=step).run()


@dataclass(frozen=True)
class FedDF(_Distilling):
    """FedDF across prototypes for ``rounds`` rounds (see the module docstring)."""

    name: ClassVar[str] = "feddf"

    def transfer(self) -> TransferConfig:
        return TransferConfig(
            "feddf",
            temperature=self.temperature,
            epochs=self.distill_epochs,
            batch_size=self.distill_batch_size,
            lr=self.distill_lr,
            own_weight=0.0,
            lambdas="uniform",
        )


@dataclass(frozen=True)
class TAKFL(_Distilling):
    """TAKFL for ``rounds`` rounds (see the module docstring)."""

    self_reg: float = 0.01
    self_temperature: float = 20.0
    lambdas: Literal["uniform", "heuristic"] = "heuristic"
    candidates: int = 5

    name: ClassVar[str] = "takfl"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lambdas == "heuristic" and self.learning.data.validation_fraction <= 0:
            raise InputError(
                "takfl: lambdas=heuristic chooses on a validation split; give the data spec "
                "a validation_fraction > 0"
            )

    def transfer(self) -> TransferConfig:
        return TransferConfig(
            "takfl",
            temperature=self.temperature,
            epochs=self.distill_epochs,
            batch_size=self.distill_batch_size,
            lr=self.distill_lr,
            own_temperature=self.self_temperature,
            own_weight=self.self_reg,
            lambdas=self.lambdas,
            candidates=self.candidates,
        )
