"""The hooks of the server-round template (:mod:`algorithms.federated.sync`)
and the rules it runs by.

- :class:`Schedule`: what kind of message each direction carries in a round
  (whole models; FedCode sends codebooks alone in some rounds);
- :class:`ServerStep`: what the server makes of a round's updates (FedAvg
  averages each prototype's; FedDF and TAKFL also transfer knowledge between
  prototypes: :mod:`algorithms.federated.transfer`);
- :class:`RoundRules`: rounds, participation, deadline and the rest, checked
  once for every method on the template.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from netsim import checks
from netsim.kernel import Request

if TYPE_CHECKING:
    from algorithms.federated.driver import Federation, Update
    from netsim.simulation import Computation, Simulation


class Schedule:
    """Plain rounds: whole models both ways."""

    def down(self, r: int) -> str:
        return "model"

    def up(self, r: int) -> str:
        return "model"


Scores = dict[str, tuple[float, float]]  # prototype -> (test accuracy, loss)


class ServerStep(Protocol):
    """What the server does with a round's updates: the requests that make
    version ``version`` of every prototype's model from ``base``, and the
    scores of the result."""

    def requests(
        self,
        fed: Federation,
        updates: list[Update],
        base: int,
        version: int,
        kind_up: str,
        send: str,
    ) -> list[Request]: ...

    def scores(self, fed: Federation, comp: Computation) -> Scores: ...

    def record(self, sim: Simulation, step: int, fed: Federation, comp: Computation) -> None:
        """Anything else worth recording about the step (after the scores)."""
        ...


class Averaging:
    """FedAvg: each prototype's updates averaged, weighted by examples."""

    def requests(
        self,
        fed: Federation,
        updates: list[Update],
        base: int,
        version: int,
        kind_up: str,
        send: str,
    ) -> list[Request]:
        out = []
        for p in fed.prototypes:
            mine = [u for u in updates if u.message.prototype == p]
            params = {
                "prototype": p,
                "base": base,
                "version": version,
                "keep_from": base,
                "weights": np.array([u.weight for u in mine]),
                "kind_up": kind_up,
                "send": send,
                "size": fed.size[p],
            }
            inbox = fed.gather([u.message for u in mine])
            out.append(Request("aggregate", np.array([fed.server]), params=params, inbox=inbox))
        return out

    def scores(self, fed: Federation, comp: Computation) -> Scores:
        return per_request_scores(fed, comp)

    def record(self, sim: Simulation, step: int, fed: Federation, comp: Computation) -> None:
        return None


def per_request_scores(fed: Federation, comp: Computation) -> Scores:
    """Scores from one request per prototype (``evaluate``, ``aggregate``)."""
    return {
        p: (float(comp.outputs(i)["accuracy"][0]), float(comp.outputs(i)["loss"][0]))
        for i, p in enumerate(fed.prototypes)
    }


@dataclass(frozen=True)
class RoundRules:
    """What a synchronous run needs from its algorithm's config (checked here,
    so that every method on the template refuses the same bad values)."""

    rounds: int
    participation: float
    deadline_s: float | None
    over_selection: float
    idle_wait_s: float
    edge_aggregation: bool
    send: str  # "weights" or "delta"

    def __post_init__(self) -> None:
        checks.positive_int("rounds", self.rounds)
        checks.number("participation", self.participation, low=0, high=1, low_open=True)
        if self.deadline_s is not None:
            checks.number("deadline_s", self.deadline_s, low=0, low_open=True)
        checks.number("over_selection", self.over_selection, low=0)
        checks.number("idle_wait_s", self.idle_wait_s, low=0, low_open=True)


def check_server(server: int, target_accuracy: float) -> None:
    checks.positive_int("server", server, minimum=0)
    checks.number("target_accuracy", target_accuracy, low=0, high=1)
