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

from algorithms.federated.codecs import Codec, Identity
from algorithms.federated.driver import Federation
from algorithms.federated.hooks import RoundRules, Schedule
from algorithms.federated.program import FederatedProgram
from algorithms.federated.rounds_config import RoundsMethod
from algorithms.federated.sync import SyncRounds
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
class FedAvg(RoundsMethod):
    """Federated averaging for ``rounds`` rounds (see the module docstring)."""

    edge_aggregation: bool = True
    up: Codec = field(default_factory=Identity)
    down: Codec = field(default_factory=Identity)

    name: ClassVar[str] = "fedavg"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_codecs(self.up, self.down)

    @property
    def program(self) -> FederatedProgram:
        return FederatedProgram(self.learning, self.server, self.up, self.down)

    def rules(self) -> RoundRules:
        return self.round_rules(
            edge_aggregation=self.edge_aggregation,
            send="delta" if self.up.target == "delta" else "weights",
        )

    def protocol(self, sim: Simulation) -> Generator[Any, Any, None]:
        fed = Federation(sim, self.learning, self.server, self.up, self.down)
        yield from SyncRounds(sim, fed, self.rules(), Schedule()).run()
