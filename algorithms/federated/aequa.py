"""Aequa: fair model rewards with a slimmable model (Tastan, Horvath &
Nandakumar, ICML 2025, arXiv 2502.04850; ``papers.md`` section 4), and the
standalone baseline it is judged against.

Aequa runs FedAvg's rounds (:mod:`algorithms.federated.sync`) on one
slimmable model (:mod:`algorithms.slimmable`). Clients train by the sandwich
rule: every step the full width plus one width ``p ~ U[p_min, 1]``; the
random-width passes are FLOPs the client reports and its compute queue runs,
so the clock sees each step's real cost. The server sees each client's update
(no edge aggregation) and scores it (:mod:`algorithms.federated.rewards`):
by its cosine with the other updates, weighted by how much the round improved
the loss on the server's validation split; at the end it measures the global
model's width -> accuracy curve on its validation split and gives each client
the width its contribution earns. Rewards are measurement: they take no
simulated time.

Recorded besides FedAvg's metrics: ``contribution_cosine`` (per client and
round), ``validation_improvement`` (per round), and at the end
``contribution``, ``reward_width`` and ``reward_accuracy`` (per client, on
the test split), and the curve: ``curve_width``,
``curve_accuracy_validation`` and ``curve_accuracy_test`` (step = the point
of the curve).

:class:`Standalone` trains every client alone, from the same initial model,
for as many local epochs as it would train in the federation, and records
each one's ``standalone_accuracy``: what a participant earns by itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import networkx as nx
import numpy as np
import pandas as pd

from algorithms.base import Final
from algorithms.federated.codecs import Identity
from algorithms.federated.driver import Federation, Update, check_federation
from algorithms.federated.hooks import Averaging, RoundRules, check_server
from algorithms.federated.program import FederatedProgram
from algorithms.federated.rewards import weighted_contribution
from algorithms.federated.rounds_config import RoundsMethod
from algorithms.federated.sync import SyncRounds
from algorithms.learning import LearningConfig
from netsim import checks
from netsim.errors import InputError
from netsim.kernel import Request

if TYPE_CHECKING:
    from netsim.simulation import Computation, Simulation


class _Contributions(Averaging):
    """FedAvg's averaging, with each update's cosine with the others, and how
    much the round improved the validation loss, recorded."""

    def __init__(self) -> None:
        self.order: list[int] = []  # the clients of the last step's updates, in inbox order
        self.cosines: dict[int, list[tuple[float, float]]] = {}  # client -> (cosine, improvement)

    def requests(
        self,
        fed: Federation,
        updates: list[Update],
        base: int,
        version: int,
        kind_up: str,
        send: str,
    ) -> list[Request]:
        (request,) = super().requests(fed, updates, base, version, kind_up, send)  # one model
        p = fed.prototypes[0]
        params = {
            **request.params,
            "contributions": True,
            "validation_flops": fed.cost[p].forward_flops * fed.validation,
        }
        self.order = [u.clients[0] for u in updates]
        return [dataclasses.replace(request, params=params)]

    def record(self, sim: Simulation, step: int, fed: Federation, comp: Computation) -> None:
        if not self.order:
            return
        out = comp.outputs(0)
        improvement = float(out["improvement"][0])
        sim.record("validation_improvement", improvement, step)
        for c, cosine in zip(self.order, out["cosine"][0], strict=True):
            self.cosines.setdefault(c, []).append((float(cosine), improvement))
            sim.metrics.add(sim.now, step, c, "contribution_cosine", float(cosine))

    def contributions(self, parameters: int) -> tuple[list[int], np.ndarray, np.ndarray]:
        """Clients seen, their contributions and significance floors (see
        :func:`~algorithms.federated.rewards.weighted_contributions`)."""
        clients = sorted(self.cosines)
        pairs = [np.array(self.cosines[c]) for c in clients]
        values, floors = zip(
            *(weighted_contribution(p[:, 0], p[:, 1], parameters) for p in pairs), strict=True
        )
        return clients, np.array(values), np.array(floors)


def _check_one_model(learning: LearningConfig, name: str) -> None:
    if learning.prototypes and len(learning.prototypes) > 1:
        raise InputError(f"{name}: trains one model; the learning config names several prototypes")


@dataclass(frozen=True)
class Aequa(RoundsMethod):
    """Aequa for ``rounds`` rounds (see the module docstring). ``widths``:
    points of the width -> accuracy curve, evenly spaced over ``[p_min, 1]``."""

    learning: LearningConfig = field(default_factory=lambda: LearningConfig(slimmable=True))
    p_min: float = 0.25
    widths: int = 16

    name: ClassVar[str] = "aequa"

    def __post_init__(self) -> None:
        super().__post_init__()
        checks.number("p_min", self.p_min, low=0, high=1, low_open=True, high_open=True)
        checks.positive_int("widths", self.widths, minimum=2)
        _check_one_model(self.learning, self.name)
        if not all(spec.slimmable for spec in self.learning.specs.values()):
            raise InputError("aequa: the model must be slimmable (LearningConfig(slimmable=True))")
        if self.learning.data.validation_fraction <= 0:
            raise InputError(
                "aequa: the server measures the width -> accuracy curve on a validation split; "
                "give the data spec a validation_fraction > 0"
            )

    def rules(self) -> RoundRules:
        """The server must see each client's update: inner nodes relay."""
        return self.round_rules(edge_aggregation=False, send="weights")

    @property
    def program(self) -> FederatedProgram:
        return FederatedProgram(
            self.learning, self.server, Identity(), Identity(), p_min=self.p_min
        )

    def protocol(self, sim: Simulation) -> Generator[Any, Any, None]:
        fed = Federation(sim, self.learning, self.server, Identity(), Identity())
        step = _Contributions()
        rounds = SyncRounds(sim, fed, self.rules(), step=step)
        yield from rounds.run()
        self._reward(sim, fed, step, rounds.version)

    def _reward(self, sim: Simulation, fed: Federation, step: _Contributions, version: int) -> None:
        if not step.cosines:
            return
        (prototype,) = fed.prototypes
        clients, mean, floor = step.contributions(fed.size[prototype])
        widths = np.linspace(self.p_min, 1.0, self.widths)
        params = {
            "prototype": prototype,
            "version": version,
            "contributions": mean,
            "floor": floor,
            "widths": widths,
        }
        out = sim.compute([Request("rewards", np.array([fed.server]), params=params)]).outputs(0)
        add, t = sim.metrics.add, sim.now
        for j, w in enumerate(widths):
            add(t, j, -1, "curve_width", float(w))
            add(t, j, -1, "curve_accuracy_validation", float(out["curve_validation"][0][j]))
            add(t, j, -1, "curve_accuracy_test", float(out["curve_test"][0][j]))
        for i, c in enumerate(clients):
            add(t, self.rounds, c, "contribution", float(mean[i]))
            add(t, self.rounds, c, "reward_width", float(out["reward_width"][0][i]))
            add(t, self.rounds, c, "reward_accuracy", float(out["reward_accuracy"][0][i]))

    def final(self, metrics: pd.DataFrame) -> Final:
        base = super().final(metrics)
        per = _per_client(metrics, ["contribution", "reward_width", "reward_accuracy"])
        values = dict(base.values)
        if len(per) >= 2:
            values["fairness_pearson"] = pearson(per["contribution"], per["reward_accuracy"])
            values["reward_width_min"] = float(per["reward_width"].min())
            values["reward_accuracy_min"] = float(per["reward_accuracy"].min())
            values["reward_accuracy_max"] = float(per["reward_accuracy"].max())
        return Final(
            values,
            {
                **base.notes,
                "fairness_pearson": "Pearson correlation of the estimated contributions with "
                "the reward models' test accuracies",
            },
        )


def _per_client(metrics: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    rows = metrics[metrics["metric"].isin(names) & (metrics["node"] >= 0)]
    return rows.pivot_table(index="node", columns="metric", values="value").dropna()


def pearson(x: pd.Series | np.ndarray, y: pd.Series | np.ndarray) -> float:
    """Pearson correlation (NaN when either side is constant)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


@dataclass(frozen=True)
class Standalone:
    """Every client trains alone for ``rounds`` x ``local_epochs`` epochs
    (see the module docstring); free riders, who do not train, keep the
    initial model."""

    learning: LearningConfig = field(default_factory=LearningConfig)
    rounds: int = 20
    server: int = 0

    name: ClassVar[str] = "standalone"
    needs_connected: ClassVar[bool] = True
    node_attributes: ClassVar[tuple[str, ...]] = ()
    combination: ClassVar[None] = None

    def __post_init__(self) -> None:
        checks.positive_int("rounds", self.rounds)
        check_server(self.server, 0.0)
        _check_one_model(self.learning, self.name)

    def check(self, graph: nx.Graph, seed: int) -> None:
        check_federation(graph, self.learning, self.server, seed)

    @property
    def program(self) -> FederatedProgram:
        return FederatedProgram(self.learning, self.server, Identity(), Identity())

    def protocol(self, sim: Simulation) -> Generator[Any, Any, None]:
        fed = Federation(sim, self.learning, self.server, Identity(), Identity())
        clients = np.array(fed.clients)
        flops = np.array([self.rounds * fed.train_flops[c] for c in fed.clients])
        request = Request(
            "standalone",
            clients,
            inputs={"train_flops": flops},
            params={"rounds": self.rounds},
        )
        comp = sim.compute([request])
        yield sim.timeout_until(float(np.max(comp.finish[0])))
        for c, accuracy in zip(fed.clients, comp.outputs(0)["accuracy"], strict=True):
            sim.metrics.add(sim.now, self.rounds, c, "standalone_accuracy", float(accuracy))
        sim.record("accuracy", float(np.mean(comp.outputs(0)["accuracy"])), self.rounds)

    def final(self, metrics: pd.DataFrame) -> Final:
        rows = metrics[metrics["metric"] == "standalone_accuracy"]["value"]
        return Final(
            {"accuracy": float(rows.mean()), "best_accuracy": float(rows.max())},
            {"accuracy": "mean over clients of each one's test accuracy trained alone"},
        )
