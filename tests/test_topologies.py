"""Topology generators, files, attribute models and combination weights."""

from __future__ import annotations

import math
from collections.abc import Callable

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import topologies
from netsim.errors import InputError
from topologies import connectivity, generators
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


# --- at scale: O(n + m), or a one-line refusal before anything is drawn ---


def _large(name: str, nodes: int, **options) -> nx.Graph:
    g = topologies.build(name, nodes, seed=5, **options)
    assert g.number_of_nodes() == nodes
    assert nx.is_connected(g)
    assert min(g) == 0 and max(g) == nodes - 1
    return g


# 100,000 nodes: a generator quadratic in n (a pure-Python search over the
# 5e9 pairs) would run past the 600 s timeout; each takes a second or two here.
# erdos_renyi at 200,000: networkx's gnp_random_graph draws a pair in ~0.1 us,
# 8 minutes at 100,000 nodes, 30 at 200,000.
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


def test_erdos_renyi_at_100k_nodes_refuses_in_one_line_before_drawing(monkeypatch) -> None:
    """Degree 6 is below the connectivity threshold ln(100,000) = 11.5: about
    248 isolated nodes per draw, so redrawing would never end."""

    def no_draw(*args, **kwargs):
        raise AssertionError("refused only after drawing")

    monkeypatch.setattr(nx, "fast_gnp_random_graph", no_draw)
    with pytest.raises(InputError) as refused:
        topologies.build("erdos_renyi", 100_000, seed=0)
    message = str(refused.value)
    assert "\n" not in message
    for part in ("p > ln n / n = 0.000115", "248 isolated", "connect='giant'", "connect='bridge'"):
        assert part in message


@pytest.mark.slow
def test_erdos_renyi_above_the_threshold_builds_at_100k_nodes() -> None:
    g = _large("erdos_renyi", 100_000, degree=14)  # ln n = 11.5: a draw is connected (p ~ 0.92)
    assert abs(2 * g.number_of_edges() / 100_000 - 14) < 0.1


def test_erdos_renyi_bridge_at_200k_nodes() -> None:
    g = _large("erdos_renyi", 200_000, connect="bridge")
    # one draw (average degree 6) plus the few bridges between its components
    assert abs(2 * g.number_of_edges() / 200_000 - 6) < 0.05


@pytest.mark.slow
def test_erdos_renyi_giant_keeps_the_documented_share() -> None:
    """s = 1 - exp(-6 s): 99.75% of the nodes, renumbered 0..k-1."""
    g = topologies.build("erdos_renyi", 100_000, seed=5, connect="giant")
    k = g.number_of_nodes()
    assert k < 100_000 and abs(k / 100_000 - 0.9975) < 0.001
    assert sorted(g) == list(range(k))
    assert nx.is_connected(g)


@pytest.mark.slow
def test_random_geometric_bridge_at_100k_nodes() -> None:
    g = _large("random_geometric", 100_000, connect="bridge")
    assert abs(2 * g.number_of_edges() / 100_000 - 6) < 0.1
    u, v, d = next(iter(g.edges(data=True)))
    assert d["distance_m"] == pytest.approx(
        math.dist(
            (g.nodes[u]["pos_x"], g.nodes[u]["pos_y"]), (g.nodes[v]["pos_x"], g.nodes[v]["pos_y"])
        )
    )


@pytest.mark.parametrize(
    ("name", "nodes", "options", "says"),
    [
        ("complete", 1_000_000, {}, "499,999,500,000 edges, about 70 TB"),
        ("complete", 6_326, {}, "complete graphs up to 6,325 nodes"),
        ("erdos_renyi", 1_000_000, {"degree": 100}, "about 50,000,000 edges"),
        ("ring", 30_000_000, {}, "the limit is 20,000,000 edges"),
        ("random_geometric", 100_000, {}, "pi r^2 > ln n / n (degree > ln n = 11.5"),
        ("random_geometric", 1_000_000, {"degree": 12}, "connect='bridge'"),
        ("small_world", 1_000_000, {"degree": 2}, "use degree >= 4"),
        ("erdos_renyi", 2_000, {}, "p > ln n / n"),
        ("erdos_renyi", 100, {"connect": "any"}, "connect must be one of redraw, giant, bridge"),
        ("erdos_renyi", 100, {"degree": -1}, "degree must be a number > 0"),
        ("small_world", 100, {"rewire": 2}, "rewire must be in"),
    ],
)
def test_hopeless_requests_refuse_in_one_line_before_drawing(
    monkeypatch, name: str, nodes: int, options: dict, says: str
) -> None:
    def no_draw(*args, **kwargs):
        raise AssertionError("refused only after drawing")

    for draw in ("complete_graph", "cycle_graph", "gnp_random_graph", "fast_gnp_random_graph"):
        monkeypatch.setattr(nx, draw, no_draw)
    monkeypatch.setattr(nx, "watts_strogatz_graph", no_draw)
    monkeypatch.setattr(generators, "_geometric_draw", no_draw)
    with pytest.raises(InputError) as refused:
        topologies.build(name, nodes, seed=0, **options)
    assert "\n" not in str(refused.value)
    assert says in str(refused.value)


def test_complete_limit_is_the_edge_limit() -> None:
    assert 6_325 * 6_324 // 2 <= connectivity.MAX_EDGES < 6_326 * 6_325 // 2


def _three_components(seed: int) -> nx.Graph:
    """Components {0, 3, 6}, {1, 4, 7, 8} and {2, 5}, interleaved."""
    g = nx.empty_graph(9)
    g.add_edges_from([(0, 3), (3, 6), (1, 4), (4, 7), (7, 8), (2, 5)])
    nx.set_node_attributes(g, {v: v for v in g}, "was")
    return g


def test_giant_keeps_the_largest_component_renumbered_in_order() -> None:
    g = connectivity.connected_draw("t", _three_components, 0, "giant", 1.0, "")
    assert sorted(g.edges) == [(0, 1), (1, 2), (2, 3)]
    assert [g.nodes[k]["was"] for k in range(4)] == [1, 4, 7, 8]


@pytest.mark.parametrize("seed", range(5))
def test_bridge_adds_one_edge_between_consecutive_components(seed: int) -> None:
    g = connectivity.connected_draw("t", _three_components, seed, "bridge", 1.0, "")
    added = set(map(frozenset, g.edges)) - set(map(frozenset, _three_components(0).edges))
    part = {v: i for i, c in enumerate([{0, 3, 6}, {1, 4, 7, 8}, {2, 5}]) for v in c}
    assert sorted(sorted(part[v] for v in e) for e in added) == [[0, 1], [1, 2]]
    assert nx.is_connected(g) and g.number_of_nodes() == 9
    same = connectivity.connected_draw("t", _three_components, seed, "bridge", 1.0, "")
    assert set(same.edges) == set(g.edges)  # same seed, same bridges


def test_redraw_gives_up_with_the_options() -> None:
    with pytest.raises(InputError, match=r"no connected graph in 100 draws; why, or pass"):
        connectivity.connected_draw("t", _three_components, 0, "redraw", 1.0, "why")


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("erdos_renyi", {"connect": "bridge"}),
        ("erdos_renyi", {"connect": "giant"}),
        ("random_geometric", {"connect": "bridge"}),
        ("small_world", {"degree": 2, "connect": "bridge"}),
        ("barabasi_albert", {}),
    ],
)
def test_same_seed_same_large_graph(name: str, options: dict) -> None:
    a = topologies.build(name, 5_000, seed=7, **options)  # above erdos_renyi's SMALL_GNP
    b = topologies.build(name, 5_000, seed=7, **options)
    assert list(a.edges(data=True)) == list(b.edges(data=True))
    assert set(topologies.build(name, 5_000, seed=8, **options).edges) != set(a.edges)


def test_geometric_pairs_are_networkx_pairs() -> None:
    """The KD-tree and sparse-matrix draw gives networkx's random_geometric_graph."""
    for seed in range(3):
        ours = generators._geometric_draw(3_000, 0.02, 1.0, seed)
        theirs = nx.random_geometric_graph(3_000, 0.02, seed=seed)
        assert list(ours.edges) == sorted(tuple(sorted(e)) for e in theirs.edges)
        assert ours.nodes[7]["pos_x"] == theirs.nodes[7]["pos"][0]
