"""Graph generators: plain functions ``f(nodes, *, seed=None, ...) -> networkx.Graph``.

Every generator returns an undirected graph on the integers ``0 .. nodes-1``.
Structure only, except where the structure implies link or device
parameters (the distance of a wireless link, the tier of an edge-cloud node);
other attributes come from the models in :mod:`topologies.attributes`, which
never overwrite what a generator set.

Every generator runs in O(n + m) time for n nodes and m edges, apart from
``complete`` (O(n^2) edges) and ``erdos_renyi`` (networkx's O(n^2)
``gnp_random_graph``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import networkx as nx
import numpy as np
import scipy.sparse
from scipy.spatial import cKDTree

from netsim.errors import InputError

MAX_DRAWS = 100  # redraws of a random graph before giving up on connectivity


def _check_nodes(name: str, nodes: int, minimum: int) -> None:
    if not isinstance(nodes, int) or isinstance(nodes, bool) or nodes < minimum:
        raise InputError(f"topology {name}: nodes must be an integer >= {minimum}, got {nodes!r}")


def _connected_draw(
    name: str, draw: Callable[[int], nx.Graph], seed: int | None, hint: str
) -> nx.Graph:
    """Redraw ``draw(seed_i)`` until connected; the seeds come from ``seed``."""
    rng = random.Random(seed)
    for _ in range(MAX_DRAWS):
        g = draw(rng.randrange(2**32))
        if nx.is_connected(g):
            return g
    raise InputError(f"topology {name}: no connected graph in {MAX_DRAWS} draws; {hint}")


def ring(nodes: int, *, seed: int | None = None) -> nx.Graph:
    """Cycle on ``nodes`` nodes (degree 2)."""
    _check_nodes("ring", nodes, 3)
    return nx.cycle_graph(nodes)


def _rows(nodes: int, rows: int | None) -> int:
    if rows is not None:
        return rows
    # the most square factorisation; a prime number of nodes gives a path
    return max(r for r in range(1, math.isqrt(nodes) + 1) if nodes % r == 0)


def _lattice(name: str, nodes: int, rows: int | None, periodic: bool) -> nx.Graph:
    """Node ``i * cols + j`` at row ``i``, column ``j``; edges in increasing order. O(n)."""
    r = _rows(nodes, rows)
    if r < 1 or nodes % r:
        raise InputError(f"topology {name}: rows={r} does not divide nodes={nodes}")
    c = nodes // r
    if periodic and (r < 3 or c < 3):
        raise InputError(
            f"topology {name}: needs at least 3x3 nodes, {nodes} nodes give {r}x{c}; "
            "choose nodes with two factors >= 3 (e.g. 9, 16, 20, 25)"
        )

    def later(k: int) -> list[int]:  # the neighbours of k above k, in increasing order
        i, j = divmod(k, c)
        if not periodic:
            return [v for v, ok in ((k + 1, j < c - 1), (k + c, i < r - 1)) if ok]
        around = (
            i * c + (j + 1) % c,
            i * c + (j - 1) % c,
            (i + 1) % r * c + j,
            (i - 1) % r * c + j,
        )
        return sorted(v for v in around if v > k)

    g = nx.Graph()
    g.add_nodes_from((k, {"pos_x": float(k % c), "pos_y": float(k // c)}) for k in range(nodes))
    g.add_edges_from((k, v) for k in range(nodes) for v in later(k))
    return g


def _sorted(g: nx.Graph) -> nx.Graph:
    """A copy of a graph on ``0..n-1`` with nodes inserted in increasing order and
    edges ``(u, v)``, ``u < v``, in increasing order, so that every node's
    neighbours iterate in increasing order (stable iteration order).

    O(n + m): a bucket sort by the smaller end, filled in order of the larger.
    """
    n = g.number_of_nodes()
    later: list[list[tuple[int, dict]]] = [[] for _ in range(n)]
    for v in range(n):
        for u, d in g.adj[v].items():
            if u < v:
                later[u].append((v, d))
    h = nx.Graph()
    h.graph.update(g.graph)
    h.add_nodes_from((v, g.nodes[v]) for v in range(n))
    h.add_edges_from((u, v, d) if d else (u, v) for u in range(n) for v, d in later[u])
    return h


def grid(nodes: int, *, seed: int | None = None, rows: int | None = None) -> nx.Graph:
    """2-D grid, ``rows x nodes/rows`` (default: the most square factorisation)."""
    _check_nodes("grid", nodes, 2)
    return _lattice("grid", nodes, rows, periodic=False)


def torus(nodes: int, *, seed: int | None = None, rows: int | None = None) -> nx.Graph:
    """2-D grid with wrap-around (every node has degree 4)."""
    _check_nodes("torus", nodes, 9)
    return _lattice("torus", nodes, rows, periodic=True)


def star(nodes: int, *, seed: int | None = None) -> nx.Graph:
    """Node 0 is the hub, linked to every other node."""
    _check_nodes("star", nodes, 2)
    return nx.star_graph(nodes - 1)


def complete(nodes: int, *, seed: int | None = None) -> nx.Graph:
    """Every pair of nodes linked."""
    _check_nodes("complete", nodes, 2)
    return nx.complete_graph(nodes)


def erdos_renyi(nodes: int, *, seed: int | None = None, degree: float = 6.0) -> nx.Graph:
    """Connected G(n, p) with ``p = degree / (nodes - 1)`` (redrawn until connected)."""
    _check_nodes("erdos_renyi", nodes, 2)
    p = min(1.0, degree / (nodes - 1))
    return _connected_draw(
        "erdos_renyi",
        lambda s: nx.gnp_random_graph(nodes, p, seed=s),
        seed,
        f"raise the average degree (now {degree}) for {nodes} nodes",
    )


def _geometric_draw(nodes: int, radius: float, area_m: float, seed: int) -> nx.Graph:
    """Nodes uniform in the unit square (drawn as networkx's
    ``random_geometric_graph`` draws them, so its graphs are reproduced), linked
    within ``radius``; positions in metres. A KD-tree finds the pairs, an
    upper-triangular sparse matrix puts them in increasing order: O(n + m)."""
    rng = random.Random(seed)
    xy = [(rng.random(), rng.random()) for _ in range(nodes)]
    pairs = cKDTree(xy).query_pairs(radius, output_type="ndarray")
    upper = scipy.sparse.csr_array(
        (np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(nodes, nodes)
    )
    del pairs
    upper.sort_indices()
    g = nx.Graph()
    g.add_nodes_from(
        (k, {"pos_x": float(x * area_m), "pos_y": float(y * area_m)}) for k, (x, y) in enumerate(xy)
    )
    rows, cols = np.repeat(np.arange(nodes), np.diff(upper.indptr)), upper.indices
    step = 1 << 20  # edges added in slices: the lists of Python ints stay small
    for i in range(0, len(cols), step):
        g.add_edges_from(zip(rows[i : i + step].tolist(), cols[i : i + step].tolist(), strict=True))
    return g


def random_geometric(
    nodes: int,
    *,
    seed: int | None = None,
    degree: float = 6.0,
    area_m: float = 1000.0,
    base_latency_s: float = 1e-3,
    speed_mps: float = 2e8,
) -> nx.Graph:
    """Wireless-style graph: nodes uniform in a square of side ``area_m``, linked
    within a radio range chosen for an average ``degree``.

    Each link gets ``latency_s = base_latency_s + distance / speed_mps`` (a fixed
    per-hop processing delay plus propagation) and ``distance_m``; nodes get
    ``pos_x``/``pos_y`` in metres. Redrawn until connected. Pairs within range
    from a KD-tree: O(n + m) a draw.
    """
    _check_nodes("random_geometric", nodes, 2)
    radius = min(math.sqrt(2), math.sqrt(degree / (math.pi * nodes)))

    g = _connected_draw(
        "random_geometric",
        lambda s: _geometric_draw(nodes, radius, area_m, s),
        seed,
        f"raise the average degree (now {degree})",
    )
    pos = [(data["pos_x"], data["pos_y"]) for _, data in g.nodes(data=True)]  # nodes 0..n-1
    for u, v, data in g.edges(data=True):
        d = math.dist(pos[u], pos[v])
        data["distance_m"] = d
        data["latency_s"] = base_latency_s + d / speed_mps
    return g


def small_world(
    nodes: int, *, seed: int | None = None, degree: int = 4, rewire: float = 0.1
) -> nx.Graph:
    """Connected Watts-Strogatz graph: a ring lattice of ``degree`` neighbours,
    each edge rewired with probability ``rewire``."""
    _check_nodes("small_world", nodes, 3)
    if degree < 2 or degree >= nodes:
        raise InputError(f"topology small_world: degree must be in [2, nodes), got {degree}")
    return _connected_draw(
        "small_world",
        lambda s: nx.watts_strogatz_graph(nodes, degree, rewire, seed=s),
        seed,
        "lower the rewiring probability",
    )


def barabasi_albert(nodes: int, *, seed: int | None = None, attach: int = 3) -> nx.Graph:
    """Preferential attachment, each new node linking to ``attach`` existing ones
    (average degree about ``2 * attach``; connected by construction).
    Barabási and Albert (1999), networkx's ``barabasi_albert_graph``: O(n + m)."""
    _check_nodes("barabasi_albert", nodes, 2)
    if not 1 <= attach < nodes:
        raise InputError(f"topology barabasi_albert: attach must be in [1, nodes), got {attach}")
    return _sorted(nx.barabasi_albert_graph(nodes, attach, seed=seed))


def edge_cloud(
    nodes: int,
    *,
    seed: int | None = None,
    edge_servers: int | None = None,
    device_latency_s: float = 5e-3,
    backhaul_latency_s: float = 20e-3,
    backhaul_Bps: float = 1.25e8,
) -> nx.Graph:
    """Two-tier hierarchy: node 0 is the cloud, nodes ``1..E`` edge servers linked
    to it, the rest devices, each linked to one edge server (round robin).

    ``E`` defaults to ``round(sqrt(nodes - 1))``. Nodes get a ``tier``
    (``cloud``/``edge``/``device``); links a latency by tier and the backhaul
    bandwidth on cloud-edge links.
    """
    _check_nodes("edge_cloud", nodes, 3)
    e = edge_servers if edge_servers is not None else max(1, round(math.sqrt(nodes - 1)))
    if not 1 <= e <= nodes - 2:
        raise InputError(
            f"topology edge_cloud: edge_servers must be in [1, nodes-2], got {e} for {nodes} nodes"
        )
    g = nx.Graph()
    g.add_node(0, tier="cloud")
    for s in range(1, e + 1):
        g.add_node(s, tier="edge")
    for d in range(e + 1, nodes):
        g.add_node(d, tier="device")
    for s in range(1, e + 1):
        g.add_edge(0, s, latency_s=backhaul_latency_s, bandwidth_Bps=backhaul_Bps)
    for i, d in enumerate(range(e + 1, nodes)):
        g.add_edge(1 + i % e, d, latency_s=device_latency_s)
    return g


GENERATORS: dict[str, Callable[..., nx.Graph]] = {
    "ring": ring,
    "grid": grid,
    "torus": torus,
    "star": star,
    "complete": complete,
    "erdos_renyi": erdos_renyi,
    "random_geometric": random_geometric,
    "small_world": small_world,
    "barabasi_albert": barabasi_albert,
    "edge_cloud": edge_cloud,
}
