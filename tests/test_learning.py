"""Learning with real models: data and partitions, FLOP counts, FedAvg's
timing and deadlines, D-PSGD against FedAvg and across topologies, FedBuff,
determinism across backends, and bad input."""

from __future__ import annotations

import dataclasses
import math
from functools import cache
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import netsim
from algorithms import datasets, learning, models
from algorithms.federated import FP16
from netsim.errors import InputError
from tests.conftest import ROOT, build
from tests.test_cli import run_cli

FEDAVG = str(ROOT / "scenarios" / "fedavg.py")


# ------------------------------------------------------------------ data
@pytest.mark.parametrize("scheme", datasets.PARTITIONS)
def test_partitions_give_every_example_to_exactly_one_client(scheme: str) -> None:
    labels = np.random.default_rng(0).integers(0, 10, 1000)
    parts = datasets.partition(labels, 20, scheme, 0.3, np.random.default_rng(1))
    joined = np.sort(np.concatenate(parts))
    np.testing.assert_array_equal(joined, np.arange(1000))


def test_partition_skews() -> None:
    labels = np.repeat(np.arange(10), 100)
    g = np.random.default_rng(2)
    iid = datasets.partition(labels, 20, "iid", 0.1, g)
    assert {len(p) for p in iid} == {50}

    def mean_classes(parts: list[np.ndarray]) -> float:
        return float(np.mean([len(np.unique(labels[p])) for p in parts if len(p)]))

    assert mean_classes(iid) > 9  # 50 random examples: nearly every class
    assert mean_classes(datasets.partition(labels, 20, "dirichlet", 0.1, g)) < 6  # label skew
    sizes = [len(p) for p in datasets.partition(labels, 20, "quantity", 0.3, g)]
    assert max(sizes) > 4 * np.median(sizes)  # quantity skew


def test_digits_split_is_stratified_and_offline() -> None:
    split = datasets.split(datasets.DataSpec("digits"), 10, seed=0)
    assert split.input_shape == (1, 8, 8) and split.classes == 10
    assert len(split.x_test) == pytest.approx(0.2 * 1797, abs=10)
    share = np.bincount(split.y_test, minlength=10) / len(split.y_test)
    assert share.max() - share.min() < 0.02


def test_synthetic_and_user_data() -> None:
    s = datasets.split(datasets.DataSpec("synthetic"), 5, seed=1)
    assert s.input_shape == (60,) and s.classes == 10
    assert (
        datasets.split(datasets.DataSpec("synthetic"), 5, seed=1).x_train.tolist()
        == s.x_train.tolist()
    )

    def mine(seed: int) -> tuple[np.ndarray, np.ndarray]:
        g = np.random.default_rng(seed)
        return g.normal(size=(100, 3)), (g.random(100) > 0.5).astype(int)

    own = datasets.split(datasets.DataSpec(mine), 4, seed=0)
    assert own.input_shape == (3,) and sum(len(c) for c in own.clients) == 80


# ------------------------------------------------------------------ models
def test_flop_counter_matches_the_analytic_count() -> None:
    """MLP 64-32-10: forward 2(64*32 + 32*10); backward: weight gradients of both
    layers and the input gradient of the second (the first needs none)."""
    model = models.build("mlp", (1, 8, 8), 10, seed=0)
    forward = 2 * (64 * 32 + 32 * 10)
    backward = 2 * 64 * 32 + 2 * (2 * 32 * 10)
    assert models.counted_training_flops(model, (1, 8, 8), 10) == forward + backward
    assert models.training_flops_per_sample(model, (1, 8, 8), 10) == forward + backward


def test_parameters_are_copied_not_shared() -> None:
    """Training must never write into the caller's array (the driver's global model)."""
    model = models.build("mlp", (1, 8, 8), 10, seed=0)
    vector = models.get_vector(model) + 1.0
    before = vector.copy()
    models.set_vector(model, vector)
    import torch

    split = datasets.split(datasets.DataSpec("digits"), 1, seed=0)
    learning.local_train(
        model,
        split.x_train[:64],
        split.y_train[:64],
        epochs=1,
        batch_size=16,
        lr=0.5,
        optimizer="sgd",
        generator=torch.Generator().manual_seed(0),
    )
    np.testing.assert_array_equal(vector, before)
    assert not np.array_equal(models.get_vector(model), before)


# ------------------------------------------------------------------ FedAvg
def test_fedavg_reaches_90_percent_on_iid_digits() -> None:
    """The default setting of scenarios/fedavg.py: 50 clients on a star of mixed
    devices, 20% participation, MLP 64-32-10, 5 local epochs of SGD (lr 0.2,
    batch 16), 30 rounds. Centralized training of the same model (20 epochs,
    lr 0.1, batch 32, all the training data) is the reference."""
    r = netsim.run(build("fedavg"))
    split = datasets.split(datasets.DataSpec("digits"), 1, seed=0)
    model = models.build("mlp", split.input_shape, split.classes, seed=0)
    import torch

    with models.torch_threads(1):
        learning.local_train(
            model,
            split.x_train,
            split.y_train,
            epochs=20,
            batch_size=32,
            lr=0.1,
            optimizer="sgd",
            generator=torch.Generator().manual_seed(0),
        )
        central, _ = learning.evaluate(model, split.x_test, split.y_test)
    assert central > 0.93
    assert r.final["accuracy"] >= 0.90
    assert r.final["accuracy"] >= central - 0.03


def _link(g: nx.DiGraph, u: int, v: int) -> tuple[float, float]:
    """Rate and latency of the link u -> v, from topology.graphml alone."""
    d = g.edges[u, v]
    rate = min(g.nodes[u]["uplink_Bps"], d["bandwidth_Bps"], g.nodes[v]["downlink_Bps"])
    return rate, d["latency_s"]


def _expected_arrivals(
    run_dir: Path, result: netsim.Result, selected: list[int], model_bytes: float
) -> dict[int, float]:
    """When each selected client's update reaches the server, recomputed from
    topology.graphml and the recorded FLOPs: the server's uplink sends the
    model to the clients one after another (in id order), each trains for
    FLOPs / budget, then uploads."""
    g = nx.read_graphml(run_dir / "topology.graphml", node_type=int)
    flops = result.metrics[(result.metrics.metric == "flops")].set_index("node")["value"]
    t, out = 0.0, {}
    for c in selected:  # FIFO on the server's uplink
        rate, lat = _link(g, 0, c)
        t += model_bytes / rate
        arrive = t + lat
        trained = arrive + flops[c] / g.nodes[c]["compute_flops"]
        up_rate, up_lat = _link(g, c, 0)
        out[c] = trained + model_bytes / up_rate + up_lat
    return out


def test_synchronous_round_duration_is_the_slowest_clients_path(tmp_path: Path) -> None:
    r = netsim.run(build("fedavg", rounds=1, participation=0.3))
    out = r.write(tmp_path / "run")
    m = r.metrics
    selected = sorted(m[(m.metric == "update_used") & (m.step == 1)]["node"].astype(int))
    bytes_down = m[(m.metric == "bytes_down") & (m.node == -1)]["value"].iloc[0]
    model_bytes = bytes_down / len(selected)
    assert model_bytes == 4 * models.parameter_count(models.build("mlp", (1, 8, 8), 10, 0))
    expected = _expected_arrivals(out, r, selected, model_bytes)
    arrivals = m[(m.metric == "update_arrival_s")].set_index("node")["value"]
    for c in selected:
        assert arrivals[c] == pytest.approx(expected[c], rel=1e-9)
    duration = m[(m.metric == "round_duration_s")]["value"].iloc[0]
    assert duration == pytest.approx(max(expected.values()), rel=1e-9)


def test_round_times_include_every_queue_server_included(tmp_path: Path) -> None:
    """Two rounds with fp16 both ways and a slow server (1 MFLOP/s), so that
    its compute queue shows. Recomputed from topology.graphml, the model's
    FLOP count and the data split alone: each round, the server encodes the
    model (P FLOPs), sends it down its FIFO uplink in client order, each
    client decodes and trains (P + training FLOPs), encodes (P), and sends
    back; after the last update the server decodes and averages (3 P per
    update) before the next round starts."""
    scenario = build("fedavg", rounds=2, participation=0.3)
    scenario.graph.nodes[0]["compute_flops"] = 1e6
    algo = dataclasses.replace(scenario.algorithm, up=FP16(), down=FP16())
    r = netsim.run(dataclasses.replace(scenario, algorithm=algo))
    out = r.write(tmp_path / "run")
    g = nx.read_graphml(out / "topology.graphml", node_type=int)
    cfg = algo.learning
    split = datasets.split(cfg.data, 50, seed=0)
    model = models.build("mlp", split.input_shape, split.classes, seed=0)
    p = models.parameter_count(model)
    per_sample = models.training_flops_per_sample(model, split.input_shape, split.classes)
    m = r.metrics
    server_rate = g.nodes[0]["compute_flops"]
    start = 0.0
    for step in (1, 2):
        selected = sorted(m[(m.metric == "update_used") & (m.step == step)]["node"].astype(int))
        t = start + p / server_rate  # the server encodes the model
        arrivals = {}
        for c in selected:  # FIFO on the server's uplink
            rate, lat = _link(g, 0, c)
            t += 2 * p / rate
            train = cfg.local_epochs * len(split.clients[c - 1]) * per_sample  # client c: shard c-1
            done = t + lat + (p + train) / g.nodes[c]["compute_flops"]
            done += p / g.nodes[c]["compute_flops"]
            up_rate, up_lat = _link(g, c, 0)
            arrivals[c] = done + 2 * p / up_rate + up_lat
        rows = m[(m.metric == "update_arrival_s") & (m.step == step)].set_index("node")["value"]
        duration = m[(m.metric == "round_duration_s") & (m.step == step)]
        round_start = float(duration["time"].iloc[0] - duration["value"].iloc[0])
        assert round_start == pytest.approx(start, rel=1e-9, abs=1e-12)
        for c in selected:
            assert rows[c] + round_start == pytest.approx(arrivals[c], rel=1e-9)
        close = max(arrivals.values())
        assert float(duration["time"].iloc[0]) == pytest.approx(close, rel=1e-9)
        start = close + 3 * p * len(selected) / server_rate  # the server aggregates
        accuracy = m[(m.metric == "accuracy") & (m.node == -1) & (m.step == step)]
        assert float(accuracy["time"].iloc[0]) == pytest.approx(start, rel=1e-9)
    assert r.summary["sim_time"] == pytest.approx(start, rel=1e-9)


def test_a_deadline_drops_exactly_the_clients_too_slow_for_it(tmp_path: Path) -> None:
    probe = netsim.run(build("fedavg", rounds=1, participation=0.6))
    probe_dir = probe.write(tmp_path / "probe")
    m = probe.metrics
    selected = sorted(m[(m.metric == "update_used") & (m.step == 1)]["node"].astype(int))
    model_bytes = m[(m.metric == "bytes_down")]["value"].iloc[0] / len(selected)
    finish = _expected_arrivals(probe_dir, probe, selected, model_bytes)
    deadline = float(np.median(list(finish.values())))  # half of them make it
    r = netsim.run(build("fedavg", rounds=1, participation=0.6, deadline_s=deadline))
    used = r.metrics[(r.metrics.metric == "update_used")].set_index("node")["value"]
    late = {c for c in selected if finish[c] > deadline}
    assert 0 < len(late) < len(selected)
    assert {c for c in selected if used[c] == 0} == late
    assert r.metrics[(r.metrics.metric == "round_duration_s")]["value"].iloc[0] == pytest.approx(
        deadline
    )


def test_over_selection_closes_at_the_target_count() -> None:
    r = netsim.run(build("fedavg", rounds=3, participation=0.2, deadline_s=1.0, over_selection=0.5))
    net = (
        r.metrics[r.metrics.node == -1]
        .pivot_table(index="step", columns="metric", values="value")
        .loc[1:]
    )  # step 0: the initial model
    assert (net["selected"] == 15).all() and (net["updates_used"] == 10).all()
    assert (net["updates_late"] == 5).all() and (net["round_duration_s"] < 1.0).all()


def test_edge_aggregators_send_one_message_up_per_round(tmp_path: Path) -> None:
    """On the edge-cloud hierarchy the cloud talks to the edge servers only:
    one model down and one aggregate up per edge server and round."""
    r = netsim.run(build("fedavg", topology="edge_cloud", clients=20, participation=1.0, rounds=2))
    g = r.graph
    edges = [k for k, d in g.nodes(data=True) if d.get("tier") == "edge"]
    model_bytes = 4 * models.parameter_count(models.build("mlp", (1, 8, 8), 10, 0))
    for e in edges:
        assert g.edges[0, e]["bytes"] == 2 * model_bytes  # down, two rounds
        assert g.edges[e, 0]["bytes"] == 2 * model_bytes  # up: one aggregate per round
    assert r.final["accuracy"] > 0.6


def test_fedavg_under_churn_counts_lost_updates() -> None:
    r = netsim.run(build("fedavg", failures=0.3, rounds=15))
    net = (
        r.metrics[r.metrics.node == -1]
        .pivot_table(index="step", columns="metric", values="value")
        .loc[1:]
    )
    assert net["updates_lost"].sum() > 0
    assert (
        net["updates_used"] + net["updates_late"] + net["updates_lost"] == net["selected"]
    ).all()
    assert not any(e.target == "node:0" for e in r.failures)  # the server never churns
    m = r.summary["messages"]
    assert m["sent"] == m["delivered"] + m["dropped"] + m["in_flight"]


def test_fedbuff_learns_asynchronously() -> None:
    r = netsim.run(build("fedavg", mode="async", rounds=40))
    net = r.metrics[r.metrics.node == -1].pivot_table(
        index="step", columns="metric", values="value"
    )
    assert net["accuracy"].iloc[-1] > net["accuracy"].iloc[0] + 0.5
    assert net["staleness_mean"].max() > 0  # some updates were computed on older models


# ------------------------------------------------------------------ D-PSGD
@cache
def dsgd(topology: str, partition: str = "iid", rounds: int = 40) -> netsim.Result:
    return netsim.run(
        build("dsgd", topology=topology, partition=partition, alpha=0.1, rounds=rounds)
    )


@pytest.mark.slow
def test_dsgd_approaches_fedavg() -> None:
    """16 nodes, IID digits, 1 local epoch per round, 40 rounds: D-PSGD's
    average model against FedAvg with every client every round."""
    fed = netsim.run(
        build("fedavg", clients=16, participation=1.0, local_epochs=1, lr=0.1, rounds=40)
    )
    assert abs(dsgd("erdos_renyi").final["accuracy"] - fed.final["accuracy"]) < 0.03


@pytest.mark.slow
def test_a_ring_converges_more_slowly_than_a_complete_graph() -> None:
    def metric(r: netsim.Result, name: str) -> np.ndarray:
        m = r.metrics
        return m[(m.metric == name) & (m.node == -1)].sort_values("step")["value"].to_numpy()

    # label-skewed data (Dirichlet 0.1): the average model learns faster on the complete graph
    ring, full = (
        metric(dsgd("ring", "dirichlet"), "accuracy"),
        metric(dsgd("complete", "dirichlet"), "accuracy"),
    )
    assert full[20] > ring[20] + 0.05 and full[40] > ring[40]
    # IID data: the ring's models stay farther from their average
    ring_d, full_d = (
        metric(dsgd("ring"), "consensus_distance"),
        metric(dsgd("complete"), "consensus_distance"),
    )
    assert (ring_d[5:] > 2 * full_d[5:]).all()


# ------------------------------------------------------------------ bad input
# (same results inline and on Ray: tests/test_contract.py, for every algorithm)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--set", "participation=0"],
            "participation: expected a finite number in (0, 1], got 0.0",
        ),
        (
            ["--set", "participation=1.5"],
            "participation: expected a finite number in (0, 1], got 1.5",
        ),
        (
            ["--set", "deadline_s=0.0001"],
            "deadline_s=0.0001: no client can ever meet it; the fastest round takes",
        ),
        (
            ["--set", "model=cnn", "--set", "dataset=synthetic"],
            "model cnn expects image inputs (channels, height, width)",
        ),
        (["--set", "dataset=mnist"], "--set dataset=mnist: expected one of digits, synthetic"),
        (
            ["--set", "partition=shards"],
            "--set partition=shards: expected one of iid, dirichlet, quantity",
        ),
    ],
)
def test_bad_learning_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = run_cli(["run", FEDAVG, *args, "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_unknown_data_set_in_python() -> None:
    with pytest.raises(
        InputError, match="dataset: expected one of 'digits', 'synthetic', 'mnist1d', got 'cifar'"
    ):
        datasets.DataSpec("cifar")
    assert math.isfinite(1.0)


# ------------------------------------------------------------------ prototypes and codecs
def test_each_prototype_trains_and_sends_its_own_model() -> None:
    """Clients of two prototypes (MLPs of 8 and 64 hidden units; the server has
    none): each client's messages are the size of its own model, and each
    prototype has its own global model."""
    import topologies
    from algorithms import DataSpec, FedAvg, LearningConfig, ModelSpec

    graph = topologies.build("star", 7)
    for k in range(1, 7):
        graph.nodes[k]["prototype"] = "small" if k % 2 else "large"
    specs = {"small": ModelSpec("mlp", 8), "large": ModelSpec("mlp", 64)}
    learning = LearningConfig(data=DataSpec("digits"), prototypes=specs, lr=0.2, local_epochs=2)
    r = netsim.run(netsim.Scenario("protos", graph, FedAvg(learning=learning, rounds=2)))
    size = {
        p: models.parameter_count(models.build("mlp", (1, 8, 8), 10, 0, s.hidden))
        for p, s in specs.items()
    }
    for k in range(1, 7):
        p = graph.nodes[k]["prototype"]
        assert r.graph.edges[0, k]["bytes"] == 2 * 4 * size[p]
        assert r.graph.edges[k, 0]["bytes"] == 2 * 4 * size[p]
    acc = {p: r.series(f"accuracy_{p}")["value"].iloc[-1] for p in specs}
    assert r.series("accuracy")["value"].iloc[-1] == pytest.approx(np.mean(list(acc.values())))
    assert acc["small"] != acc["large"]


def test_prototypes_must_be_named_on_every_client() -> None:
    import topologies
    from algorithms import FedAvg, LearningConfig, ModelSpec

    graph = topologies.build("star", 4)
    graph.nodes[1]["prototype"] = "small"
    graph.nodes[2]["prototype"] = "tiny"
    learning = LearningConfig(prototypes={"small": ModelSpec("mlp", 8)})
    with pytest.raises(InputError, match="topology node 2: prototype 'tiny' is not one of small"):
        netsim.run(netsim.Scenario("bad", graph, FedAvg(learning=learning, rounds=1)))
    graph.nodes[2]["prototype"] = "small"
    with pytest.raises(InputError, match="topology node 3: attribute 'prototype' missing"):
        netsim.run(netsim.Scenario("bad", graph, FedAvg(learning=learning, rounds=1)))


def test_dsgd_broadcasts_what_its_codec_encodes() -> None:
    """fp16 halves every broadcast; the average model still learns."""
    full = netsim.run(build("dsgd", nodes=6, rounds=3))
    half = netsim.run(build("dsgd", nodes=6, rounds=3, codec="fp16"))
    assert half.summary["bytes_sent"] == full.summary["bytes_sent"] / 2
    assert half.final["accuracy"] == pytest.approx(full.final["accuracy"], abs=0.03)
