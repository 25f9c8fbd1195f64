"""Aequa: slimmable layers against dense ones, FLOPs at a width, the
contribution estimate, the allocation, participants' settings, and runs on
the clock (sandwich cost, free riders, rewards)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import netsim
from algorithms import datasets, models, participants, slimmable
from algorithms.federated.rewards import (
    allocate,
    loo_cosines,
    significance_floor,
    weighted_contribution,
)
from netsim.errors import InputError
from tests.conftest import SCENARIOS, build
from tests.test_cli import run_cli

SMALL = {"honest": 5, "free_riders": 2, "rounds": 3, "samples": 3000, "hidden": 32}


# ------------------------------------------------------------------ slimmable models
def _dense_mlp_like(slim: nn.Module, k: int) -> nn.Module:
    """A dense MLP of ``k`` hidden units holding the slim model's leading weights."""
    first, last = slim[1], slim[3]
    dense = nn.Sequential(
        nn.Flatten(), nn.Linear(first.in_features, k), nn.ReLU(), nn.Linear(k, last.out_features)
    )
    with torch.no_grad():
        dense[1].weight.copy_(first.weight[:k])
        dense[1].bias.copy_(first.bias[:k])
        dense[3].weight.copy_(last.weight[:, :k])
        dense[3].bias.copy_(last.bias)
    return dense


@pytest.mark.parametrize("width", [0.1, 0.37, 0.5, 1.0])
def test_a_slimmed_mlp_is_the_dense_mlp_of_its_width(width: float) -> None:
    slim = slimmable.build("mlp", (1, 8, 8), 10, seed=3, hidden=40)
    k = slimmable.units(40, width)
    x = torch.randn(7, 1, 8, 8)
    slimmable.set_width(slim, width)
    with torch.no_grad():
        got, want = slim(x), _dense_mlp_like(slim, k)(x)
    assert got.shape == (7, 10)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("width", [0.25, 0.6])
def test_a_slimmed_convolution_is_the_dense_convolution_of_its_width(width: float) -> None:
    from algorithms.slim_layers import SlimConv1d, SlimConv2d

    for layer, dense_type, shape in (
        (SlimConv1d(3, 12, 5, 2, 2), nn.Conv1d, (4, 3, 40)),
        (SlimConv2d(3, 12, 3, 1, 1), nn.Conv2d, (4, 3, 8, 8)),
    ):
        k = slimmable.units(12, width)
        dense = dense_type(2, k, layer.kernel_size, stride=layer.stride, padding=layer.padding)
        with torch.no_grad():
            dense.weight.copy_(layer.weight[:k, :2])
            dense.bias.copy_(layer.bias[:k])
        layer.slim_width = width
        x = torch.randn(*shape)[:, :2]  # a slimmed previous layer gives fewer channels
        with torch.no_grad():
            torch.testing.assert_close(layer(x), dense(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name, shape", [("mlp", (1, 8, 8)), ("cnn", (1, 40)), ("cnn", (1, 8, 8))])
def test_at_full_width_a_slimmable_model_is_the_dense_model(name: str, shape: tuple) -> None:
    slim = slimmable.build(name, shape, 10, seed=5, hidden=16)
    dense = models.build(name, shape, 10, seed=5, hidden=16)
    np.testing.assert_array_equal(models.get_vector(slim), models.get_vector(dense))
    x = torch.randn(3, *shape)
    with torch.no_grad():
        torch.testing.assert_close(slim(x), dense(x), rtol=0, atol=1e-6)


def test_flops_at_a_width_are_those_of_the_dense_model_of_that_width() -> None:
    slim = slimmable.build("mlp", (1, 8, 8), 10, seed=0, hidden=64)
    cost = slimmable.WidthCost(slim, (1, 8, 8), 10)
    for width in (0.25, 0.5, 1.0):
        k = slimmable.units(64, width)
        dense = models.build("mlp", (1, 8, 8), 10, seed=0, hidden=k)
        assert cost(width) == models.training_flops_per_sample(dense, (1, 8, 8), 10)
    # linear in the hidden units: per unit, the first layer's forward and weight
    # gradient (2 + 2 FLOPs per input; no gradient for the data), the second's
    # forward, input and weight gradients (2 + 2 + 2 per class)
    assert cost(0.5) - cost(0.25) == 16 * (4 * 64 + 6 * 10)


# ------------------------------------------------------------------ contribution and allocation
def test_leave_one_out_cosines() -> None:
    rng = np.random.default_rng(0)
    common = rng.normal(size=500)
    deltas = np.stack([common, common, np.zeros(500), rng.normal(size=500) * 10])
    cos = loo_cosines(deltas, np.array([1.0, 2.0, 1.0, 1.0]))
    others = (2 * common + rng.normal(size=500) * 0) + deltas[3]  # what row 0 is compared with
    expected0 = common @ others / np.linalg.norm(common) / np.linalg.norm(others)
    assert cos[0] == pytest.approx(expected0, rel=1e-9)
    assert cos[2] == 0.0  # a zero update (a free rider copying the model)
    assert abs(cos[3]) < 4 / np.sqrt(500)  # noise: the order of 1/sqrt(d)
    assert loo_cosines(deltas[:1], np.ones(1))[0] == 0.0  # nobody else


def test_the_significance_floor_is_three_sigma_of_a_noise_senders_mean_cosine() -> None:
    """A random update's cosine with an unrelated vector in ``d`` dimensions
    has standard deviation ``1/sqrt(d)``; its mean over ``n`` rounds,
    ``1/sqrt(d n)``. Measured over 400 noise senders (std of the estimate 3.5%)."""
    rng = np.random.default_rng(1)
    d, rounds = 2000, 10
    signal = rng.normal(size=d)
    means = [
        np.mean(
            [
                loo_cosines(
                    np.stack([signal + rng.normal(size=d), rng.normal(size=d)]), np.ones(2)
                )[1]
                for _ in range(rounds)
            ]
        )
        for _ in range(400)
    ]
    sigma = 1 / np.sqrt(d * rounds)
    assert np.std(means) == pytest.approx(sigma, rel=0.15)
    assert significance_floor(d, np.array([rounds]))[0] == pytest.approx(3 * sigma)


def test_contributions_weigh_rounds_by_the_validation_improvement() -> None:
    value, floor = weighted_contribution(
        np.array([0.5, -0.2, 0.1]), np.array([0.3, -0.1, 0.1]), parameters=1000
    )
    assert value == pytest.approx((0.5 * 0.3 + 0.1 * 0.1) / 0.4)  # the worsening round weighs 0
    assert floor == pytest.approx(3 / np.sqrt(1000 * 0.4**2 / (0.3**2 + 0.1**2)))
    value, floor = weighted_contribution(np.array([0.2, 0.4]), np.array([-1.0, 0.0]), 1000)
    assert value == pytest.approx(0.3)  # no round improved: the plain mean
    assert floor == pytest.approx(3 / np.sqrt(2000))


def test_allocation_is_monotone_in_contribution() -> None:
    rng = np.random.default_rng(2)
    widths = np.linspace(0.2, 1.0, 17)
    for _ in range(300):
        curve = np.sort(rng.uniform(0.3, 0.9, len(widths))) + rng.normal(0, 0.02, len(widths))
        c = rng.uniform(-0.1, 1.0, 12)
        floor = rng.uniform(0, 0.1)
        given = allocate(c, widths, curve, floor)
        order = np.argsort(c, kind="stable")
        assert np.all(np.diff(given[order]) >= 0)  # more contribution, never a narrower model
        assert given[np.argmax(c)] == 1.0  # the top contributor gets the full model
        assert np.all(given[c <= floor] == widths[0])  # none measurable: p_min
        assert set(given) <= set(widths)


def test_allocation_inverts_the_curve() -> None:
    widths = np.array([0.25, 0.5, 0.75, 1.0])
    curve = np.array([0.4, 0.6, 0.55, 0.8])  # a dip: the envelope is 0.4, 0.6, 0.6, 0.8
    # targets 0.4 + c * 0.4: c = 0.5 -> 0.6 -> width 0.5; c = 0.6 -> 0.64 -> width 1
    given = allocate(np.array([0.0, 0.5, 0.6, 1.0]), widths, curve, 0.0)
    np.testing.assert_array_equal(given, [0.25, 0.5, 1.0, 1.0])


# ------------------------------------------------------------------ participants
def test_data_weights_set_shard_sizes_and_label_noise_flips_that_fraction() -> None:
    spec = datasets.DataSpec("digits")
    split = datasets.split(spec, 3, seed=0, weights=np.array([1.0, 2.0, 5.0]))
    sizes = np.array([len(p) for p in split.clients])
    assert sizes.sum() == len(split.y_train)
    np.testing.assert_allclose(
        sizes / sizes.sum(), [1 / 8, 2 / 8, 5 / 8], atol=1 / len(split.y_train)
    )
    y = np.arange(20000) % 10
    noisy = participants.noisy_labels(y, 0.3, 10, np.random.default_rng(0))
    # a redrawn label equals the old one 1 time in 10: 27% of the labels change
    assert np.mean(noisy != y) == pytest.approx(0.3 * 0.9, abs=0.01)


@pytest.mark.parametrize(
    "attrs, message",
    [
        ({"data_weight": 0.0}, "node 1: attribute 'data_weight' must be > 0"),
        ({"label_noise": 1.5}, "node 1: attribute 'label_noise' must be in [0, 1]"),
        ({"label_noise": "lots"}, "node 1: attribute 'label_noise' must be a number"),
        ({"free_rider": "lazy"}, "node 1: attribute 'free_rider' must be one of copy, noise"),
    ],
)
def test_bad_participant_attributes_are_refused_naming_the_node(attrs: dict, message: str) -> None:
    g = nx.star_graph(3)
    nx.set_node_attributes(g, {1: attrs})
    s = build("fedavg", clients=3, rounds=1)
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        netsim.run(dataclasses_replace(s, graph=g))


def dataclasses_replace(s: netsim.Scenario, **kw: object) -> netsim.Scenario:
    import dataclasses

    return dataclasses.replace(s, **kw)


def test_data_weights_need_an_iid_pool() -> None:
    with pytest.raises(InputError, match="partition 'iid'"):
        datasets.split(
            datasets.DataSpec("digits", partition="dirichlet"), 2, 0, weights=np.ones(2) * 2
        )


# ------------------------------------------------------------------ runs
@cache
def run(**params: object) -> netsim.Result:
    return netsim.run(build("aequa", **{**SMALL, **params}))


def per_node(r: netsim.Result, name: str) -> pd.Series:
    m = r.metrics
    return m[(m.metric == name) & (m.node >= 0)].groupby("node")["value"].mean()


def test_free_riders_train_nothing_send_nothing_new_and_earn_p_min() -> None:
    r = run()
    riders = [6, 7]  # honest 1..5, then the free riders (copy, noise)
    train = per_node(r, "train_s")
    assert (train.loc[riders] == 0).all() and (train.drop(riders) > 0).all()
    cos = r.metrics[(r.metrics.metric == "contribution_cosine") & (r.metrics.node == 6)]
    assert len(cos) == 3 and (cos["value"] == 0).all()  # a copy: no change at all
    width = per_node(r, "reward_width")
    assert (width.loc[riders] == 0.25).all()
    assert width.max() == 1.0
    assert r.final["fairness_pearson"] > 0.5


def test_sandwich_training_costs_what_its_widths_cost() -> None:
    """With widths drawn from [0.999, 1] every step costs about two full-width
    steps; with p_min = 0.25, 1 + E[f(p)]/f(1) for this MLP, whose f is
    affine in the hidden units."""
    fedavg = per_node(run(algorithm="fedavg"), "train_s").loc[1:5]
    near_one = per_node(run(p_min=0.999), "train_s").loc[1:5]
    np.testing.assert_allclose(near_one / fedavg, 2.0, rtol=2e-3)
    quarter = per_node(run(p_min=0.25), "train_s").loc[1:5]
    slim = slimmable.build("mlp", (1, 40), 10, seed=0, hidden=32)
    cost = slimmable.WidthCost(slim, (1, 40), 10)
    ps = np.linspace(0.25, 1, 2001)
    expected = 1 + np.mean([cost(p) for p in ps]) / cost(1.0)
    # a few hundred random widths per client: the sample mean within 5%
    np.testing.assert_allclose(quarter / fedavg, expected, rtol=0.05)


def test_standalone_records_each_clients_accuracy_and_free_riders_keep_the_initial_model() -> None:
    r = run(algorithm="standalone")
    acc = per_node(r, "standalone_accuracy")
    assert list(acc.index) == [1, 2, 3, 4, 5, 6, 7]
    assert acc.loc[6] == acc.loc[7]  # both untrained: the same initial model
    assert acc.loc[5] > acc.loc[6] + 0.1  # the best-placed participant learns


@pytest.mark.parametrize(
    "flag, message",
    [
        ("p_min=0", "p_min: expected"),
        ("p_min=1.5", "p_min: expected"),
        ("honest=1", "honest: expected at least 2"),
        ("max_label_noise=2", "max_label_noise: expected a fraction"),
        ("quantity_skew=0.5", "quantity_skew: expected a ratio >= 1"),
        ("validation_fraction=0", "validation split"),
        ("model=logreg", "model"),
    ],
)
def test_bad_scenario_parameters_get_one_line_and_exit_2(
    flag: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["run", str(SCENARIOS / "aequa.py"), "--set", flag, "--out", str(tmp_path / "r")]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
