"""What keeps the engine linear at scale gives the answers of the plain way:
byte totals per bin touched, inboxes found by binary search, the metric log
in blocks, and a scenario's graph read without being copied or changed."""

from __future__ import annotations

import networkx as nx
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import netsim
import topologies
from algorithms import AverageConsensus
from netsim.messages import accumulate
from netsim.metric_log import MetricLog
from netsim.simulation import _positions


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 99), max_size=40), st.integers(0, 2**31))
def test_accumulate_is_a_bincount(index: list[int], seed: int) -> None:
    weights = np.random.default_rng(seed).random(len(index)) * 1e3
    total = np.random.default_rng(seed + 1).random(100)
    want = total + np.bincount(np.array(index, dtype=np.int64), weights, minlength=100)
    accumulate(total, np.array(index, dtype=np.int64), weights)
    assert np.array_equal(total, want)


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(0, 199), max_size=20), st.lists(st.integers(0, 199), max_size=30))
def test_positions_by_search_are_positions_by_table(receivers: set, nodes: list) -> None:
    r = np.array(sorted(receivers, key=lambda k: (k * 7919) % 211), dtype=np.int64)
    table = np.full(200, -1)
    table[r] = np.arange(len(r))
    got = _positions(r, np.array(nodes, dtype=np.int64), 200)  # few receivers: searched
    assert np.array_equal(got, table[np.array(nodes, dtype=np.int64)])


def test_metric_log_keeps_the_order_rows_were_recorded_in() -> None:
    log = MetricLog()
    log.add(0.0, 0, -1, "a", 1.0)
    log.extend(0.5, 1, np.array([2, 0]), "b", np.array([3.0, 4.0]))
    log.add(1.0, 2, -1, "a", 5.0)
    log.add(1.5, 3, 7, "c", 6.0)
    log.extend(2.0, 1, np.array([1]), "d", 9.0)
    frame = log.frame()
    assert frame["metric"].tolist() == ["a", "b", "b", "a", "c", "d"]
    assert frame["node"].tolist() == [-1, 2, 0, -1, 7, 1]
    assert frame["step"].tolist() == [0, 1, 1, 2, 3, 1]
    assert frame["time"].tolist() == [0.0, 0.5, 0.5, 1.0, 1.5, 2.0]
    assert frame["value"].tolist() == [1.0, 3.0, 4.0, 5.0, 6.0, 9.0]
    assert log.last_step == 3 and len(log) == 6


def test_a_complete_graph_is_used_as_given_and_left_unchanged() -> None:
    g = topologies.build("ring", 12, seed=1)
    bare = nx.Graph(g)  # no attributes: the run fills defaults into a copy
    topologies.assign_devices(g, "mixed", seed=1)
    topologies.assign_links(g, latency_s=0.01)
    before = nx.to_dict_of_dicts(g), dict(g.nodes(data=True))
    algo = AverageConsensus(iterations=5)
    full = netsim.run(netsim.Scenario(name="c", graph=g, algorithm=algo, seed=3))
    assert (nx.to_dict_of_dicts(g), dict(g.nodes(data=True))) == before
    netsim.run(netsim.Scenario(name="c", graph=bare, algorithm=algo, seed=3))
    assert all(not d for _, d in bare.nodes(data=True))  # the user's graph was not filled in
    assert full.nodes["device_class"].nunique() > 1  # the graph's own attributes were used
