"""Windowed gossip is the per-exchange protocol, done a window at a time: the
same metrics, message counts, bytes, busy time and energy, bit for bit."""

from __future__ import annotations

import dataclasses
from typing import Any

import networkx as nx
import numpy as np
import pytest

import netsim
import topologies
from algorithms import RandomizedGossip
from netsim.traces import link, node
from tests.conftest import build

SAME = ("messages", "bytes_sent", "energy_J", "energy_by_cause_J", "events", "final", "sim_time")


def both(scenario: netsim.Scenario, **run: Any) -> tuple[netsim.Result, netsim.Result]:
    """The run per exchange and windowed."""
    algo = scenario.algorithm
    exchange = dataclasses.replace(scenario, algorithm=dataclasses.replace(algo, window=False))
    window = dataclasses.replace(scenario, algorithm=dataclasses.replace(algo, window=True))
    return netsim.run(exchange, **run), netsim.run(window, **run)


def assert_same(a: netsim.Result, b: netsim.Result) -> None:
    assert a.metrics.equals(b.metrics)
    for key in SAME:
        assert a.summary[key] == b.summary[key], key
    assert a.failures == b.failures
    assert a.nodes.equals(b.nodes)  # per device: flops, busy, bytes, energy
    assert a.links.equals(b.links)
    assert b.summary["host_calls"] < a.summary["host_calls"]  # one call a rank, not an exchange


def graph_of(n: int, seed: int, **links: Any) -> nx.Graph:
    graph = topologies.build("erdos_renyi", n, seed=seed)
    topologies.assign_devices(graph, "mixed", seed=seed)
    topologies.assign_links(graph, seed=seed, **links)
    return graph


def scenario(
    graph: nx.Graph, failures: netsim.Failures | None = None, **algo: Any
) -> netsim.Scenario:
    return netsim.Scenario(
        name="gossip-window",
        graph=graph,
        algorithm=RandomizedGossip(**{"iterations": 20, **algo}),
        seed=3,
        failures=failures or netsim.Failures(),
    )


def test_plain() -> None:
    a, b = both(build("consensus", algorithm="gossip", nodes=15, iterations=20))
    assert_same(a, b)
    assert a.summary["messages"]["dropped"] == 0


def test_mean_is_kept_exactly_without_loss() -> None:
    """Pairwise exchanges move equal and opposite amounts, so the sum is kept:
    the error, measured against the initial mean, goes down to rounding (a
    drift of the mean by a share eps would leave it at about eps)."""
    r = netsim.run(
        build("consensus", algorithm="gossip", nodes=12, iterations=100, topology="complete", dim=2)
    )
    assert r.summary["messages"]["dropped"] == 0
    assert r.final["consensus_error"] < 1e-13


def test_lossy_links() -> None:
    graph = graph_of(14, 1, loss=0.2)
    for k, (_, _, data) in enumerate(graph.edges(data=True)):
        data["loss"] = 0.0 if k % 3 == 0 else data["loss"]  # lossless links draw nothing
    a, b = both(scenario(graph, dim=3))
    assert_same(a, b)
    assert a.summary["messages"]["dropped"] > 0


def test_node_churn_and_restart() -> None:
    churn = netsim.Churn(mtbf_s=2.0, mttr_s=0.4, fraction=0.6)
    for on_recover in ("resume", "restart"):
        failures = netsim.Failures(churn=churn, on_recover=on_recover)
        a, b = both(scenario(graph_of(12, 2), failures))
        assert_same(a, b)
        assert a.summary["failures"] > 0 and a.summary["messages"]["dropped"] > 0


def test_heterogeneous_latency_slow_compute_and_bandwidth() -> None:
    """Replies wait for slow devices and narrow uplinks (queues across
    windows); scripted failures of nodes and links, and budget, bandwidth and
    latency changes in the middle of the run."""
    graph = graph_of(12, 4, bandwidth_Bps=400.0, bandwidth_sigma=0.5)
    rng = np.random.default_rng(0)
    for _, _, data in graph.edges(data=True):
        data["latency_s"] = float(rng.uniform(0.002, 0.05))
    for k, data in graph.nodes(data=True):
        data["compute_flops"] = 30.0 if k % 2 else 1e9  # 0.1 s to answer on the slow ones
    u, v = next(iter(graph.edges()))
    events = (
        netsim.FailureEvent(1.5, node(3), "down"),
        netsim.FailureEvent(2.25, node(3), "up"),
        netsim.FailureEvent(3.0, link(u, v), "down"),
        netsim.FailureEvent(4.5, link(u, v), "up"),
        netsim.FailureEvent(2.0, node(5), "compute", 5.0),
        netsim.FailureEvent(5.0, link(u, v), "latency", 0.001),
        netsim.FailureEvent(6.0, link(u, v), "bandwidth", 100.0),
    )
    a, b = both(scenario(graph, netsim.Failures(events=events), dim=4, iterations=12))
    assert_same(a, b)
    assert a.summary["messages"]["dropped"] > 0


def test_zero_latency_falls_back_to_exchanges() -> None:
    a, b = both(scenario(graph_of(8, 5, latency_s=0.0), iterations=5))
    assert a.metrics.equals(b.metrics)
    assert a.summary["host_calls"] == b.summary["host_calls"]


@pytest.mark.parametrize("hosts", [1, 3])
def test_sharded_hosts(hosts: int) -> None:
    failures = netsim.Failures(churn=netsim.Churn(mtbf_s=3.0, mttr_s=0.5))
    a, b = both(scenario(graph_of(10, 6, loss=0.1), failures), hosts=hosts)
    assert_same(a, b)
