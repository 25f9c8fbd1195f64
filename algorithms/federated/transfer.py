"""Server-side knowledge transfer between device prototypes: FedDF and TAKFL.

Each round, after the clients of every prototype sent their models, the
server (on its host, as one job on its compute queue):

1. averages each prototype's models (FedAvg within the prototype): ``theta_p``;
2. computes each prototype's *teacher*: the mean logits of its clients'
   models on the unlabeled public split;
3. **FedDF**: distils every ``theta_p`` toward the mean of all prototypes'
   teachers;
   **TAKFL**: for every student ``p`` and teacher ``j``, distils a copy of
   ``theta_p`` toward teacher ``j`` alone, with temperature ``T`` and
   self-regularization toward ``theta_p``'s own logits (``T_s``, weight
   ``gamma``); the task vectors ``tau_pj = theta_{p<-j} - theta_p`` are merged
   as ``theta_p + sum_j lambda_pj tau_pj``, with ``lambda`` uniform or chosen
   per student among candidates by accuracy on the labelled validation split
   (the paper's ``no_tuning`` and ``heuristic`` options).

Declared cost (:func:`transfer_flops`): a forward pass over the public split
per client model received (teachers) and per student (its own logits),
``epochs`` training passes over the public split per distillation, and a
forward pass over the validation split per candidate tried.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from algorithms import models
from algorithms.federated import aggregation, distillation
from netsim import checks
from netsim.kernel import KernelCall, Outputs, Request

if TYPE_CHECKING:
    from algorithms.federated.driver import Federation, Update
    from algorithms.federated.program import FederatedState
    from netsim.simulation import Computation, Simulation

METHODS = ("feddf", "takfl")
LAMBDAS = ("uniform", "heuristic")


@dataclass(frozen=True)
class TransferConfig:
    """How the server transfers knowledge between prototypes."""

    method: Literal["feddf", "takfl"] = "takfl"
    temperature: float = 3.0
    epochs: int = 5
    batch_size: int = 128
    lr: float = 1e-3
    own_temperature: float = 20.0
    own_weight: float = 0.01  # TAKFL's self-regularization; FedDF has none
    lambdas: Literal["uniform", "heuristic"] = "heuristic"
    candidates: int = 5  # random candidates per sparsity level (heuristic)

    def __post_init__(self) -> None:
        checks.choice("method", self.method, METHODS)
        checks.number("temperature", self.temperature, low=0, low_open=True)
        checks.positive_int("distill_epochs", self.epochs)
        checks.positive_int("distill batch_size", self.batch_size)
        checks.number("distill lr", self.lr, low=0, low_open=True)
        checks.number("own_temperature", self.own_temperature, low=0, low_open=True)
        checks.number("self_reg", self.own_weight, low=0)
        checks.choice("lambdas", self.lambdas, LAMBDAS)
        checks.positive_int("candidates", self.candidates, minimum=0)

    def n_candidates(self, teachers: int) -> int:
        """How many merges the heuristic tries for ``teachers`` teachers (an
        upper bound: random draws that underflow are skipped)."""
        if self.lambdas == "uniform" or teachers < 2:
            return 0
        own = max(0, int(np.ceil((0.9 - 1.0 / teachers) / 0.1 - 1e-9)))
        return 1 + own + 3 * self.candidates


def transfer_flops(cfg: TransferConfig, params: Mapping[str, Any]) -> float:
    """FLOPs of one transfer step, from the request's facts: ``counts`` (client
    models received per prototype), ``forward``/``train`` (FLOPs per example
    per prototype), ``public`` and ``validation`` sizes, ``size`` (parameters)."""
    counts, fwd, train = params["counts"], params["forward"], params["train"]
    public, val, size = params["public"], params["validation"], params["size"]
    teachers = [p for p in counts if counts[p] > 0]
    flops = 0.0
    for p in counts:  # averaging within each prototype, and its teacher's logits
        flops += aggregation.average_flops(size[p], counts[p]) + counts[p] * public * fwd[p]
    for s in counts:
        if not teachers:
            continue
        if cfg.method == "feddf":
            flops += cfg.epochs * public * train[s]
            continue
        flops += public * fwd[s]  # its own logits, for self-regularization
        flops += len(teachers) * cfg.epochs * public * train[s]
        flops += cfg.n_candidates(len(teachers)) * (val * fwd[s] + 2 * len(teachers) * size[s])
    return flops


def transfer(
    state: FederatedState, call: KernelCall, cfg: TransferConfig, decode: Any
) -> tuple[FederatedState, Outputs]:
    """The server's step (see the module docstring): new versions of every
    prototype's model, their test accuracy and loss, and TAKFL's coefficients."""
    import torch

    assert call.inbox is not None
    learner, split = state.learner, state.learner.split
    prototypes = list(call.params["prototypes"])
    base, version = int(call.params["base"]), int(call.params["version"])
    weights = np.asarray(call.params["weights"], dtype=float)
    sent_by = list(call.params["sent_by"])  # prototype of each message
    messages = call.inbox.messages(0)
    rng = call.rngs[int(call.idx[0])]
    generator = torch.Generator().manual_seed(int(rng.integers(2**31 - 1)))
    theta, teacher = {}, {}
    with models.torch_threads(learner.cfg.torch_threads):
        for p in prototypes:
            mine = [i for i, q in enumerate(sent_by) if q == p]
            if not mine:
                theta[p] = state.versions[(p, base)].copy()
                continue
            vectors = np.array([decode(messages[i], None) for i in mine], dtype=np.float32)
            theta[p] = aggregation.weighted_average(vectors, weights[mine])
            model = learner.models[p]
            outs = []
            for v in vectors:
                models.set_vector(model, v)
                outs.append(distillation.logits(model, split.x_public))
            teacher[p] = np.mean(outs, axis=0)
        lambdas = np.full((len(prototypes), len(prototypes)), np.nan)
        for si, s in enumerate(prototypes):
            new = theta[s]
            if teacher and cfg.method == "feddf":
                target = np.mean(list(teacher.values()), axis=0)
                new = _distilled(
                    learner.models[s], theta[s], split.x_public, target, cfg, generator
                )
            elif teacher:
                new, chosen = _takfl(learner, s, theta[s], teacher, cfg, generator, rng)
                for j, t in enumerate(teacher):
                    lambdas[si, prototypes.index(t)] = chosen[j]
            state.versions[(s, version)] = new
        keep_from = int(call.params["keep_from"])
        for key in [k for k in state.versions if k[1] < keep_from]:
            del state.versions[key]
        scores = np.array([learner.evaluate(p, state.versions[(p, version)]) for p in prototypes])
    return state, {
        "accuracy": scores[None, :, 0],
        "loss": scores[None, :, 1],
        "lambdas": lambdas.reshape(1, -1),
    }


def _distilled(
    model: Any,
    start: np.ndarray,
    x: np.ndarray,
    target: np.ndarray,
    cfg: TransferConfig,
    generator: Any,
    own: np.ndarray | None = None,
) -> np.ndarray:
    models.set_vector(model, start)
    distillation.distill(
        model,
        x,
        target,
        temperature=cfg.temperature,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        generator=generator,
        own=own,
        own_temperature=cfg.own_temperature,
        own_weight=cfg.own_weight if own is not None else 0.0,
    )
    return models.get_vector(model)


def _takfl(
    learner: Any,
    s: str,
    theta: np.ndarray,
    teacher: dict[str, np.ndarray],
    cfg: TransferConfig,
    generator: Any,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Student ``s``: one distillation per teacher, then the task-vector merge."""
    split, model = learner.split, learner.models[s]
    models.set_vector(model, theta)
    own = distillation.logits(model, split.x_public)
    names = list(teacher)
    vectors = np.array(
        [
            _distilled(model, theta, split.x_public, teacher[t], cfg, generator, own) - theta
            for t in names
        ]
    )
    if cfg.lambdas == "uniform" or len(names) < 2:
        chosen = np.full(len(names), 1.0 / len(names))
        return distillation.merge(theta, vectors, chosen), chosen
    own_index = names.index(s) if s in names else None
    candidates = distillation.merge_candidates(len(names), own_index, cfg.candidates, rng)
    best, chosen, merged = -1.0, candidates[0], theta
    for row in candidates:
        candidate = distillation.merge(theta, vectors, row)
        models.set_vector(model, candidate)
        pred = distillation.logits(model, split.x_val).argmax(axis=1)
        accuracy = float(np.mean(pred == split.y_val))
        if accuracy > best:  # ties: the earlier candidate (equal weights first)
            best, chosen, merged = accuracy, row, candidate
    return merged, chosen


# ---------------------------------------------------------------- the driver's side
@dataclass(frozen=True)
class KnowledgeTransfer:
    """The server step of FedDF and TAKFL (:class:`~algorithms.federated.hooks.ServerStep`):
    one ``transfer`` request with every update of the round."""

    cfg: TransferConfig

    def requests(
        self,
        fed: Federation,
        updates: list[Update],
        base: int,
        version: int,
        kind_up: str,
        send: str,
    ) -> list[Request]:
        counts = {p: sum(u.message.prototype == p for u in updates) for p in fed.prototypes}
        params = {
            "prototypes": list(fed.prototypes),  # smallest model first
            "sent_by": [u.message.prototype for u in updates],
            "weights": np.array([u.weight for u in updates]),
            "base": base,
            "version": version,
            "keep_from": base,
            "counts": counts,
            "forward": {p: fed.cost[p].forward_flops for p in fed.prototypes},
            "train": {p: fed.cost[p].train_flops for p in fed.prototypes},
            "public": fed.public,
            "validation": fed.validation,
            "size": dict(fed.size),
        }
        inbox = fed.gather([u.message for u in updates])
        return [Request("transfer", np.array([fed.server]), params=params, inbox=inbox)]

    def scores(self, fed: Federation, comp: Computation) -> dict[str, tuple[float, float]]:
        out = comp.outputs(0)
        return {
            p: (float(out["accuracy"][0][i]), float(out["loss"][0][i]))
            for i, p in enumerate(fed.prototypes)
        }

    def record(self, sim: Simulation, step: int, fed: Federation, comp: Computation) -> None:
        """TAKFL's merging coefficients: ``lambda_<student>_<teacher>``."""
        if self.cfg.method != "takfl":
            return
        k = len(fed.prototypes)
        chosen = np.asarray(comp.outputs(0)["lambdas"][0]).reshape(k, k)
        for i, s in enumerate(fed.prototypes):
            for j, t in enumerate(fed.prototypes):
                if np.isfinite(chosen[i, j]):
                    sim.record(f"lambda_{s}_{t}", float(chosen[i, j]), step)
