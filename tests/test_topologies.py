"""Topology generators, files, attribute models and combination weights."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import topologies
from netsim.errors import InputError
from topologies import generators
from topologies.weights import combination_weights, slem


@pytest.mark.parametrize("name", sorted(topologies.GENERATORS))
def test_generators_give_connected_graphs_on_0_to_n(name: str) -> None:
    n = 16
    g = topologies.build(name, n, seed=3)
    assert sorted(g.nodes) == list(range(n))
    assert nx.is_connected(g)
    assert not g.is_directed()
    assert topologies.build(name, n, seed=3).edges == g.edges  # same seed, same graph


@pytest.mark.parametrize(
    "name", ["erdos_renyi", "random_geometric", "small_world", "barabasi_albert"]
)
def test_random_generators_depend_on_seed(name: str) -> None:
    assert set(topologies.build(name, 40, seed=1).edges) != set(
        topologies.build(name, 40, seed=2).edges
    )


def test_erdos_renyi_average_degree() -> None:
    degrees = [
        2 * topologies.build("erdos_renyi", 400, seed=s).number_of_edges() / 400 for s in range(5)
    ]
    assert abs(np.mean(degrees) - 6.0) < 0.3


def test_random_geometric_latency_follows_distance() -> None:
    g = topologies.build("random_geometric", 30, seed=0)
    for u, v, d in g.edges(data=True):
        dist = math.dist(
            (g.nodes[u]["pos_x"], g.nodes[u]["pos_y"]), (g.nodes[v]["pos_x"], g.nodes[v]["pos_y"])
        )
        assert d["latency_s"] == pytest.approx(1e-3 + dist / 2e8)


def test_edge_cloud_is_a_two_tier_tree() -> None:
    g = topologies.build("edge_cloud", 21, seed=0)
    tiers = nx.get_node_attributes(g, "tier")
    assert tiers[0] == "cloud"
    edges = [k for k, t in tiers.items() if t == "edge"]
    assert len(edges) == round(math.sqrt(20))
    assert nx.is_tree(g)
    for k, t in tiers.items():
        if t == "device":
            (parent,) = g.neighbors(k)
            assert tiers[parent] == "edge"


def test_grid_and_torus_degrees() -> None:
    assert max(d for _, d in topologies.build("grid", 12, seed=0).degree) == 4
    assert {d for _, d in topologies.build("torus", 16, seed=0).degree} == {4}


@pytest.mark.parametrize(
    ("name", "nodes", "message"),
    [
        ("nope", 5, "unknown topology 'nope'"),
        ("ring", 2, "nodes must be an integer >= 3"),
        ("torus", 10, "3x3"),
    ],
)
def test_bad_topology_requests(name: str, nodes: int, message: str) -> None:
    with pytest.raises(InputError, match=message):
        topologies.build(name, nodes, seed=0)


def test_assign_devices_by_share_and_keeps_existing_values() -> None:
    g = nx.empty_graph(2000)
    g.nodes[0]["compute_flops"] = 7.0
    topologies.assign_devices(g, "mixed", seed=1)
    classes = [d["device_class"] for _, d in g.nodes(data=True)]
    assert abs(classes.count("phone") / 2000 - 0.5) < 0.04
    assert g.nodes[0]["compute_flops"] == 7.0


def test_lognormal_bandwidth_median() -> None:
    g = topologies.build("erdos_renyi", 300, seed=0)
    topologies.assign_links(g, bandwidth_Bps=1e6, bandwidth_sigma=0.5, seed=0)
    bw = np.array([d["bandwidth_Bps"] for *_, d in g.edges(data=True)])
    assert abs(np.median(bw) / 1e6 - 1) < 0.1
    assert abs(np.std(np.log(bw)) - 0.5) < 0.05


@st.composite
def graphs(draw: st.DrawFn) -> nx.Graph:
    n = draw(st.integers(1, 12))
    pairs = [(u, v) for u in range(n) for v in range(u + 1, n)]
    edges = draw(st.lists(st.sampled_from(pairs), unique=True)) if pairs else []
    g = nx.empty_graph(n)
    g.add_edges_from(edges)
    return g


@settings(max_examples=200, deadline=None)
@given(graphs(), st.sampled_from(sorted(topologies.RULES)))
def test_weights_are_left_stochastic_and_local(g: nx.Graph, rule: str) -> None:
    a = combination_weights(g, rule).matrix()
    assert np.all(a >= -1e-15)
    np.testing.assert_allclose(a.sum(axis=0), 1.0, atol=1e-12)
    adj = nx.to_numpy_array(g, nodelist=range(g.number_of_nodes())) + np.eye(g.number_of_nodes())
    assert np.all(a[adj == 0] == 0)
    if rule in ("metropolis", "laplacian"):  # symmetric, hence doubly stochastic
        np.testing.assert_allclose(a, a.T, atol=1e-15)


def test_slem_of_complete_graph_uniform_weights_is_zero() -> None:
    a = combination_weights(nx.complete_graph(6), "uniform").matrix()
    assert slem(a) == pytest.approx(0.0, abs=1e-12)


def test_graph_file_round_trip_and_renumbering(tmp_path) -> None:
    g = nx.Graph()
    g.add_edge("a", "b", latency_s=0.01)
    g.add_edge("b", "c")
    nx.write_graphml(g, tmp_path / "g.graphml")
    loaded = topologies.load_graph(tmp_path / "g.graphml")
    assert sorted(loaded.nodes) == [0, 1, 2]
    assert [loaded.nodes[k]["label"] for k in range(3)] == ["a", "b", "c"]
    assert loaded.edges[0, 1]["latency_s"] == 0.01


def test_edge_list_with_attributes(tmp_path) -> None:
    path = tmp_path / "net.edgelist"
    path.write_text("# two links\n0 1 latency_s=0.02\n1 2 bandwidth_Bps=5e6 loss=0.1\n")
    g = topologies.load_graph(path)
    assert g.edges[0, 1]["latency_s"] == 0.02 and g.edges[1, 2]["loss"] == 0.1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 1\n2\n", r"net.edgelist:2: expected 'u v"),
        ("0 1 latency_s\n", r"net.edgelist:1: expected name=value"),
        ("1 1\n", "self-loop"),
    ],
)
def test_edge_list_errors_name_the_line(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "net.edgelist"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        topologies.load_graph(path)


def test_unreadable_graph_files(tmp_path) -> None:
    with pytest.raises(InputError, match="not found"):
        topologies.load_graph(tmp_path / "missing.graphml")
    bad = tmp_path / "bad.graphml"
    bad.write_text("<graphml><graph><node id='0'></graph>")
    with pytest.raises(InputError, match="not a valid GraphML"):
        topologies.load_graph(bad)
    binary = tmp_path / "bin.edgelist"
    binary.write_bytes(b"\x80\x04\x95\xff\xfe")
    with pytest.raises(InputError, match="binary"):
        topologies.load_graph(binary)


# --- at scale: O(n + m) ---


def _large(name: str, nodes: int, **options) -> nx.Graph:
    g = topologies.build(name, nodes, seed=5, **options)
    assert g.number_of_nodes() == nodes
    assert nx.is_connected(g)
    assert min(g) == 0 and max(g) == nodes - 1
    return g


# 100,000 nodes: a generator quadratic in n (a pure-Python search over the
# 5e9 pairs) would run past the 600 s timeout; each takes a second or two here.
@pytest.mark.parametrize(
    ("name", "edges"),
    [
        ("ring", lambda n: n),
        ("grid", lambda n: 2 * n - 250 - 400),  # 250 rows of 400
        ("torus", lambda n: 2 * n),
        ("star", lambda n: n - 1),
        ("small_world", lambda n: 2 * n),
        ("edge_cloud", lambda n: n - 1),
    ],
)
def test_sparse_generators_at_100k_nodes(name: str, edges: Callable[[int], int]) -> None:
    n = 100_000
    assert _large(name, n).number_of_edges() == edges(n)


@pytest.mark.slow
def test_barabasi_albert_at_100k_nodes() -> None:
    g = _large("barabasi_albert", 100_000, attach=3)
    assert g.number_of_edges() == (100_000 - 3) * 3
    assert list(g.adj[0]) == sorted(g.adj[0])  # neighbours in increasing order


@pytest.mark.parametrize(
    ("name", "nodes", "seed", "digest"),
    [
        ("erdos_renyi", 30, 1, "fe42761d730aa408"),
        ("erdos_renyi", 400, 0, "6222ef2b27c10a8c"),
        ("random_geometric", 30, 0, "371f93c8421ad753"),
        ("small_world", 30, 1, "41d4ef13dbbd1662"),
        ("barabasi_albert", 40, 1, "30f66638b963320a"),
        ("grid", 12, 0, "6e0551ec20585668"),
        ("torus", 16, 0, "feb7e9185b20d77f"),
    ],
)
def test_small_graphs_are_those_of_earlier_versions(
    name: str, nodes: int, seed: int, digest: str
) -> None:
    """Digests of the graphs (nodes, edges, attributes, order) as netsim built
    them before the generators were made linear (commit 4712061), so that the
    figures measured on them (docs/algorithms.md, docs/apsm.md) still hold."""
    g = topologies.build(name, nodes, seed=seed)
    text = repr((list(g.nodes(data=True)), list(g.edges(data=True))))
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == digest


def test_geometric_pairs_are_networkx_pairs() -> None:
    """The KD-tree and sparse-matrix draw gives networkx's random_geometric_graph."""
    for seed in range(3):
        ours = generators._geometric_draw(3_000, 0.02, 1.0, seed)
        theirs = nx.random_geometric_graph(3_000, 0.02, seed=seed)
        assert list(ours.edges) == sorted(tuple(sorted(e)) for e in theirs.edges)
        assert ours.nodes[7]["pos_x"] == theirs.nodes[7]["pos"][0]
