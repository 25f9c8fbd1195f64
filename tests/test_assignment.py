"""Devices on hosts: graph-aware blocks cut fewer links than blocks of ids,
the share of messages that crosses hosts is counted as by hand, and where a
device runs never changes a result."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import netsim
from netsim.assignment import assign_hosts, blocks, cross_fraction, graph_order
from tests.conftest import build


def links_of(graph: nx.Graph) -> tuple[np.ndarray, np.ndarray]:
    """Both directions of every edge, as ``(src, dst)``."""
    edges = np.array(list(graph.edges()), dtype=np.int64).reshape(-1, 2)
    return np.r_[edges[:, 0], edges[:, 1]], np.r_[edges[:, 1], edges[:, 0]]


def test_cross_fraction_by_hand() -> None:
    # path 0-1-2-3, hosts {0, 1} and {2, 3}: of 6 directed links, 1->2 and 2->1 cross
    src, dst = links_of(nx.path_graph(4))
    assert cross_fraction(np.array([0, 0, 1, 1]), src, dst) == pytest.approx(2 / 6)
    # hosts {0, 2} and {1, 3}: every link crosses
    assert cross_fraction(np.array([0, 1, 0, 1]), src, dst) == 1.0
    assert cross_fraction(np.array([0, 0, 0, 0]), src, dst) == 0.0
    assert cross_fraction(np.zeros(3, dtype=np.int64), src[:0], dst[:0]) == 0.0


def test_graph_order_keeps_neighbours_together_on_a_shuffled_grid() -> None:
    """A 30x30 grid with its labels shuffled: blocks of ids cut about half of
    all links; blocks of the reverse Cuthill-McKee order cut a few percent."""
    grid = nx.convert_node_labels_to_integers(nx.grid_2d_graph(30, 30))
    perm = np.random.default_rng(0).permutation(900)
    src, dst = links_of(nx.relabel_nodes(grid, dict(enumerate(perm.tolist()))))
    by_ids = assign_hosts(900, 4, src, dst, "blocks")
    by_graph = assign_hosts(900, 4, src, dst, "graph")
    assert np.array_equal(by_ids, blocks(900, 4))
    assert np.array_equal(np.bincount(by_graph), [225] * 4)  # as balanced as blocks
    assert cross_fraction(by_ids, src, dst) > 0.6
    assert cross_fraction(by_graph, src, dst) < 0.1
    assert sorted(graph_order(900, src, dst)) == list(range(900))  # a permutation


def test_one_host_or_one_device_per_host_needs_no_order() -> None:
    src, dst = links_of(nx.cycle_graph(5))
    assert np.array_equal(assign_hosts(5, 1, src, dst), np.zeros(5))
    assert np.array_equal(assign_hosts(5, 5, src, dst), np.arange(5))
    with pytest.raises(ValueError, match="placement: expected one of graph, blocks"):
        assign_hosts(5, 2, src, dst, "metis")  # type: ignore[arg-type]


def test_the_summary_counts_messages_that_cross_hosts() -> None:
    """Consensus on a ring of 6 nodes, hosts {0, 1, 2} and {3, 4, 5}: every
    round each node sends to both neighbours (12 messages); 2->3, 3->2, 5->0
    and 0->5 cross."""
    scenario = build("consensus", nodes=6, topology="ring", iterations=5)
    result = netsim.run(scenario, hosts=2, placement="blocks")
    assert result.summary["messages"]["sent"] > 0
    assert result.summary["messages_cross_hosts"] == pytest.approx(4 / 12)
    assert result.summary["links_cross_hosts"] == pytest.approx(4 / 12)
    assert netsim.run(scenario).summary["messages_cross_hosts"] == 0.0  # one host


def test_graph_aware_placement_changes_no_result() -> None:
    """Diffusion on 60 nodes over 3 hosts: the same metrics whether devices
    are placed by graph order or by id, and as on one host."""
    scenario = build("diffusion_lms", nodes=60, iterations=30)
    one = netsim.run(scenario)
    by_graph = netsim.run(scenario, hosts=3, placement="graph")
    by_ids = netsim.run(scenario, hosts=3, placement="blocks")
    assert by_graph.metrics.equals(one.metrics) and by_ids.metrics.equals(one.metrics)
    assert by_graph.summary["links_cross_hosts"] < by_ids.summary["links_cross_hosts"]
