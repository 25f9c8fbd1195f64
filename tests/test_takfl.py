"""Knowledge transfer between device prototypes (FedDF, TAKFL; papers.md
section 5): the distillation loss and the task-arithmetic merge on small
hand-computed cases, the data where capacity matters, and the runs: each
prototype's messages are its own model's size, the server's distillation
takes the simulated time its FLOPs say, and failures are handled as in
FedAvg."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest

import netsim
from algorithms import datasets, learning, models
from algorithms.federated import distillation
from tests.conftest import build

SMALL = {"rounds": 2, "samples": 3000, "small_clients": 4, "medium_clients": 2, "distill_epochs": 1}


# ------------------------------------------------------------------ pure functions
def test_kd_loss_by_hand() -> None:
    """Teacher softmax (3/4, 1/4) against a uniform student: KL = 0.1308 at
    T = 1; at T = 2 the teacher softens to (0.634, 0.366), KL 0.0363, times
    T^2 = 4. Self-regularization toward own logits (1/4, 3/4) at T_s = 1 with
    weight 0.5 adds 0.5 * 0.1308. (torch computes in float32: to 1e-5.)"""
    import torch

    student = torch.zeros((2, 2))
    teacher = torch.tensor([[math.log(3), 0.0]] * 2)
    own = torch.tensor([[0.0, math.log(3)]] * 2)
    kl1 = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    a = math.sqrt(3) / (math.sqrt(3) + 1)
    kl2 = a * math.log(2 * a) + (1 - a) * math.log(2 * (1 - a))
    assert float(distillation.kd_loss(student, teacher, 1.0)) == pytest.approx(kl1, rel=1e-5)
    assert float(distillation.kd_loss(student, teacher, 2.0)) == pytest.approx(4 * kl2, rel=1e-5)
    both = distillation.kd_loss(student, teacher, 2.0, own, own_temperature=1.0, own_weight=0.5)
    assert float(both) == pytest.approx(4 * kl2 + 0.5 * kl1, rel=1e-5)
    assert float(distillation.kd_loss(teacher, teacher, 3.0)) == pytest.approx(0.0, abs=1e-5)


def test_task_arithmetic_merge_by_hand() -> None:
    base = np.array([1.0, 2.0])
    task_vectors = np.array([[1.0, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(
        distillation.merge(base, task_vectors, np.array([0.5, 0.25])), [1.5, 2.5]
    )
    np.testing.assert_allclose(distillation.merge(base, task_vectors, np.array([0.0, 0.0])), base)


def test_merge_candidates() -> None:
    rows = distillation.merge_candidates(3, own=0, random=4, rng=np.random.default_rng(0))
    np.testing.assert_allclose(rows.sum(axis=1), 1.0)
    np.testing.assert_allclose(rows[0], [1 / 3] * 3)  # equal weights first
    assert rows[1][0] == pytest.approx(0.9) and rows[1][1] == pytest.approx(0.05)
    own_rows = [r for r in rows[1:] if r[0] > r[1] and r[1] == r[2]]
    assert [round(r[0], 2) for r in own_rows] == [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    assert len(rows) == 1 + 6 + 3 * 4
    assert np.all(np.diff(rows[-1]) >= 0)  # random rows are sorted: larger prototypes weigh more


def test_distillation_moves_the_student_toward_its_teacher() -> None:
    import torch

    split = datasets.split(datasets.DataSpec("mnist1d", samples=1000), 1, seed=0)
    student = models.build("mlp", split.input_shape, 10, seed=1, hidden=16)
    teacher = models.build("mlp", split.input_shape, 10, seed=2, hidden=64)
    target = distillation.logits(teacher, split.x_train)

    def loss() -> float:
        out = torch.from_numpy(distillation.logits(student, split.x_train))
        return float(distillation.kd_loss(out, torch.from_numpy(target), 3.0))

    before = loss()
    distillation.distill(
        student,
        split.x_train,
        target,
        temperature=3.0,
        epochs=5,
        batch_size=64,
        lr=1e-2,
        generator=torch.Generator().manual_seed(0),
    )
    assert loss() < before / 2


# ------------------------------------------------------------------ data
def test_mnist1d_is_offline_and_capacity_matters() -> None:
    """Trained centrally on the same split, the large prototype's model (a
    1-D CNN) beats the small one's (an MLP of 16 units) by at least 10 points."""
    import torch

    split = datasets.split(datasets.DataSpec("mnist1d", samples=4000), 1, seed=0)
    assert split.input_shape == (1, 40) and split.classes == 10
    scores = {}
    for name, spec in {"small": ("mlp", 16), "large": ("cnn", 32)}.items():
        model = models.build(spec[0], split.input_shape, 10, seed=0, hidden=spec[1])
        with models.torch_threads(1):
            learning.local_train(
                model,
                split.x_train,
                split.y_train,
                epochs=15,
                batch_size=64,
                lr=1e-3,
                optimizer="adam",
                generator=torch.Generator().manual_seed(0),
            )
            scores[name], _ = learning.evaluate(model, split.x_test, split.y_test)
    assert scores["large"] >= scores["small"] + 0.10, scores


def test_shares_and_server_splits() -> None:
    spec = datasets.DataSpec(
        "mnist1d",
        samples=3000,
        public_fraction=0.2,
        validation_fraction=0.05,
        partition="dirichlet",
        alpha=0.3,
        shares={"a": 0.25, "b": 0.75},
    )
    s = datasets.split(spec, 4, seed=0, groups=["a", "a", "b", "b"])
    assert (len(s.x_test), len(s.x_public)) == (600, 600)
    assert abs(len(s.x_val) - 150) <= 5  # stratified: rounded class by class
    sizes = [len(c) for c in s.clients]
    assert sum(sizes[:2]) == pytest.approx(0.25 * len(s.x_train), abs=2)
    joined = np.sort(np.concatenate(s.clients))
    np.testing.assert_array_equal(joined, np.arange(len(s.x_train)))
    assert np.bincount(s.y_val).min() >= 14  # stratified: 15 of each class


# ------------------------------------------------------------------ runs
@cache
def run(algorithm: str, **extra: object) -> netsim.Result:
    return netsim.run(build("takfl", algorithm=algorithm, **SMALL, **extra))


@pytest.mark.parametrize("algorithm", ["fedavg", "feddf", "takfl"])
def test_each_prototype_sends_its_own_model(algorithm: str) -> None:
    r = run(algorithm)
    sizes = {
        "small": models.parameter_count(models.build("mlp", (1, 40), 10, 0, 16)),
        "medium": models.parameter_count(models.build("mlp", (1, 40), 10, 0, 64)),
        "large": models.parameter_count(models.build("cnn", (1, 40), 10, 0, 32)),
    }
    assert sizes["small"] * 3 < sizes["medium"] and sizes["medium"] * 3 < sizes["large"]
    m = r.metrics
    for p, size in sizes.items():
        picked = m[(m.metric == "update_used") & (m.step == 1)]["node"].astype(int)
        n = sum(r.graph.nodes[c]["prototype"] == p for c in picked)
        for direction in ("down", "up"):
            sent = m[(m.metric == f"bytes_{direction}_{p}") & (m.step == 1)]["value"].iloc[0]
            assert sent == n * 4 * size, (p, direction)


def expected_transfer_flops(
    algorithm: str, counts: dict[str, int], cost: dict, public: int, val: int, epochs: int
) -> float:
    """The server's FLOPs for one round, by hand: averaging (2 per value and
    update) and one forward pass over the public split per client model
    received; FedDF: one distillation per student (``epochs`` training passes
    over the public split); TAKFL: the student's own logits, one distillation
    per (student, teacher), and for each of the 22 candidate merges (equal
    weights, 0.9 down to 0.4 on the student's own prototype, 3 x 5 random)
    the merge (2 per value and teacher) and a forward pass over the
    validation split."""
    teachers = sum(1 for p in counts if counts[p])
    flops = sum(counts[p] * (2 * c.parameters + public * c.forward_flops) for p, c in cost.items())
    for c in cost.values():
        if algorithm == "feddf":
            flops += epochs * public * c.train_flops
        else:
            flops += public * c.forward_flops + teachers * epochs * public * c.train_flops
            flops += 22 * (val * c.forward_flops + 2 * teachers * c.parameters)
    return flops


@pytest.mark.parametrize("algorithm", ["feddf", "takfl"])
def test_the_servers_distillation_takes_its_flops_over_its_budget(algorithm: str) -> None:
    """With a 1 GFLOP/s server, each round's server time is the transfer
    step's FLOPs, counted by hand from the model FLOP counts and the split
    sizes, over the budget."""
    r = run(algorithm, server_flops=1e9)
    spec = build("takfl", algorithm=algorithm, **SMALL).algorithm.learning
    split = datasets.split(spec.data, 7, 0, ["small"] * 4 + ["medium"] * 2 + ["large"])
    cost = learning.cost_table(spec, split, 0)
    m = r.metrics
    for step in (1, 2):
        picked = m[(m.metric == "update_used") & (m.step == step)]["node"].astype(int)
        counts = {p: sum(r.graph.nodes[c]["prototype"] == p for c in picked) for p in cost}
        assert all(counts.values())  # every prototype taught this round
        flops = expected_transfer_flops(
            algorithm, counts, cost, len(split.x_public), len(split.x_val), SMALL["distill_epochs"]
        )
        server_s = m[(m.metric == "server_s") & (m.step == step)]["value"].iloc[0]
        assert server_s == pytest.approx(flops / 1e9, rel=1e-9)
    assert server_s > 0.1  # the budget matters at this size


def test_transfer_beats_no_transfer_early_on_small_devices() -> None:
    """After two rounds, knowledge from the large devices already lifts the
    small prototype's model above what FedAvg within its prototype gives."""
    small = {a: run(a).series("accuracy_small")["value"].iloc[-1] for a in ("fedavg", "takfl")}
    assert small["takfl"] > small["fedavg"]


def test_failures_mid_round_are_handled_as_in_fedavg() -> None:
    r = netsim.run(build("takfl", algorithm="takfl", failures=0.3, mttr_s=0.05, **SMALL))
    net = r.metrics[r.metrics.node == -1].pivot_table(
        index="step", columns="metric", values="value"
    )
    net = net.loc[1:]
    assert net["updates_lost"].sum() > 0
    assert (
        net["updates_used"] + net["updates_late"] + net["updates_lost"] == net["selected"]
    ).all()
    m = r.summary["messages"]
    assert m["sent"] == m["delivered"] + m["dropped"] + m["in_flight"]
