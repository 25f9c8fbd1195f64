"""Graph generators: plain functions ``f(nodes, *, seed=None, ...) -> networkx.Graph``.

Every generator returns an undirected graph on the integers ``0 .. nodes-1``
(``erdos_renyi``, ``random_geometric`` and ``small_world`` with
``connect="giant"`` return fewer nodes: see :func:`erdos_renyi`).
Structure only, except where the structure implies link or device
parameters (the distance of a wireless link, the tier of an edge-cloud node);
other attributes come from the models in :mod:`topologies.attributes`, which
never overwrite what a generator set.

Every generator runs in O(n + m) time for n nodes and m edges, or refuses at
once with an :class:`~netsim.errors.InputError` of one line: a graph of
more than :data:`~topologies.connectivity.MAX_EDGES` edges (``complete``
above 6,325 nodes), or a random graph that would almost never be connected
(below its connectivity threshold, e.g. ``p > ln n / n`` for ``erdos_renyi``)
unless ``connect`` says how to make it connected
(:mod:`topologies.connectivity`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import networkx as nx
import numpy as np

from netsim.errors import InputError
from topologies.connectivity import (
    chance_text,
    check_degree,
    check_edges,
    connected_draw,
    count_text,
    isolated_geometric,
)

SMALL_GNP = 1000  # erdos_renyi draws pair by pair up to this many nodes (see there)


def _check_nodes(name: str, nodes: int, minimum: int) -> None:
    if not isinstance(nodes, int) or isinstance(nodes, bool) or nodes < minimum:
        raise InputError(f"topology {name}: nodes must be an integer >= {minimum}, got {nodes!r}")


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


def ring(nodes: int, *, seed: int | None = None) -> nx.Graph:
    """Cycle on ``nodes`` nodes (degree 2)."""
    _check_nodes("ring", nodes, 3)
    check_edges("ring", nodes, nodes)
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
    check_edges(name, nodes, 2 * nodes)

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
    check_edges("star", nodes, nodes - 1)
    return nx.star_graph(nodes - 1)


def complete(nodes: int, *, seed: int | None = None) -> nx.Graph:
    """Every pair of nodes linked (refused above 6,325 nodes: 20 million edges,
    :data:`~topologies.connectivity.MAX_EDGES`)."""
    _check_nodes("complete", nodes, 2)
    check_edges(
        "complete", nodes, nodes * (nodes - 1) // 2, more=" (complete graphs up to 6,325 nodes)"
    )
    return nx.complete_graph(nodes)


def erdos_renyi(
    nodes: int, *, seed: int | None = None, degree: float = 6.0, connect: str = "redraw"
) -> nx.Graph:
    """Connected G(n, p) with ``p = degree / (nodes - 1)``, redrawn until connected
    or, with ``connect``, its giant component or bridged components.

    ``connect`` says how the graph is made connected:

    - ``"redraw"`` (default): redraw until connected, at most 100 times. Refused
      at once when a connected draw is not expected within those: G(n, p) is
      connected with probability at most ``exp(-mu)``, ``mu = n (1 - p)^(n-1)``
      the expected number of isolated nodes, which needs ``p`` above the
      connectivity threshold ``ln n / n`` (Erdős and Rényi 1959). At the
      default degree 6 that is up to 1,875 nodes.
    - ``"giant"``: one draw, keeping its largest component, renumbered
      ``0..k-1`` in order: the graph has fewer nodes than asked, a fraction
      ``s = 1 - exp(-degree s)`` of them (99.75% at degree 6).
    - ``"bridge"``: one draw, plus one edge between random members of each two
      consecutive components (ordered by their smallest node): components - 1
      edges, the fewest that connect it.

    Up to 1,000 nodes the pairs are drawn one by one (networkx's
    ``gnp_random_graph``, O(n^2), under 0.1 s), so the graphs of earlier
    versions are reproduced; above, by geometric skipping (Batagelj and Brandes
    2005, ``fast_gnp_random_graph``), O(n + m). Same seed, same graph.
    """
    name = "erdos_renyi"
    _check_nodes(name, nodes, 2)
    check_degree(name, degree)
    p = min(1.0, degree / (nodes - 1))
    check_edges(name, nodes, p * nodes * (nodes - 1) / 2, expected=True)
    isolated = nodes * math.exp((nodes - 1) * math.log1p(-p)) if p < 1 else 0.0
    threshold = math.log(nodes) / nodes
    why = (
        f"{nodes:,} nodes at average degree {degree:g} (p = {p:.3g}) are almost never "
        f"connected: about {count_text(isolated)} isolated nodes expected, P(connected) <= "
        f"{chance_text(isolated)}; connectivity needs p > ln n / n = {threshold:.3g} "
        f"(degree > {threshold * (nodes - 1):.3g}); raise degree"
    )
    gnp = nx.gnp_random_graph if nodes <= SMALL_GNP else nx.fast_gnp_random_graph
    return connected_draw(
        name, lambda s: gnp(nodes, p, seed=s), seed, connect, math.exp(-isolated), why
    )


def _geometric_draw(nodes: int, radius: float, area_m: float, seed: int) -> nx.Graph:
    """Nodes uniform in the unit square (drawn as networkx's
    ``random_geometric_graph`` draws them, so its graphs are reproduced), linked
    within ``radius``; positions in metres. A KD-tree finds the pairs, an
    upper-triangular sparse matrix puts them in increasing order: O(n + m)."""
    import scipy.sparse  # here, not at import: SciPy takes a second to load
    from scipy.spatial import cKDTree

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
    connect: str = "redraw",
) -> nx.Graph:
    """Wireless-style graph: nodes uniform in a square of side ``area_m``, linked
    within a radio range chosen for an average ``degree``.

    Each link gets ``latency_s = base_latency_s + distance / speed_mps`` (a fixed
    per-hop processing delay plus propagation) and ``distance_m``; nodes get
    ``pos_x``/``pos_y`` in metres. Redrawn until connected, or see ``connect``
    (as for :func:`erdos_renyi`; a bridge is a long link, its latency from its
    distance). ``"redraw"`` is refused at once when a connected draw is not
    expected in 100: connectivity needs ``pi r^2 > ln n / n`` (Penrose 1997),
    a degree above ``ln n`` and more for the nodes near the border, which are
    counted (at the default degree 6, up to 1,031 nodes). Pairs within
    range from a KD-tree: O(n + m).
    """
    name = "random_geometric"
    _check_nodes(name, nodes, 2)
    check_degree(name, degree)
    radius = min(math.sqrt(2), math.sqrt(degree / (math.pi * nodes)))
    check_edges(name, nodes, min(degree, nodes - 1) * nodes / 2, expected=True)
    isolated = isolated_geometric(nodes, degree)
    why = (
        f"{nodes:,} nodes at average degree {degree:g} (range {radius * area_m:.3g} m of "
        f"{area_m:g} m) are almost never connected: about {count_text(isolated)} isolated nodes "
        f"expected, P(connected) <= {chance_text(isolated)}; connectivity needs "
        f"pi r^2 > ln n / n (degree > ln n = {math.log(nodes):.3g}, more near the border); "
        "raise degree"
    )
    g = connected_draw(
        name,
        lambda s: _geometric_draw(nodes, radius, area_m, s),
        seed,
        connect,
        math.exp(-isolated),
        why,
    )
    pos = [(data["pos_x"], data["pos_y"]) for _, data in g.nodes(data=True)]  # nodes 0..n-1
    for u, v, data in g.edges(data=True):
        d = math.dist(pos[u], pos[v])
        data["distance_m"] = d
        data["latency_s"] = base_latency_s + d / speed_mps
    return g


def small_world(
    nodes: int,
    *,
    seed: int | None = None,
    degree: int = 4,
    rewire: float = 0.1,
    connect: str = "redraw",
) -> nx.Graph:
    """Connected Watts-Strogatz graph: a ring lattice of ``degree`` neighbours,
    each edge rewired with probability ``rewire``.

    With ``degree >= 4`` every node keeps two links of its own and a draw is
    connected in practice (every draw tried, up to 200,000 nodes). With
    ``degree`` 2 or 3 it keeps one: the rewired links cut the ring into pieces
    and a draw is connected with probability about
    ``(1.5 + 7 rewire) / sqrt(nodes rewire)`` (an upper envelope of simulations
    from 200 to 50,000 nodes), so ``connect="redraw"`` is refused at once when
    that is below 1 / 100: from about 480,000 nodes at ``rewire = 0.1``; ``connect`` as
    for :func:`erdos_renyi`. O(n + m) a draw.
    """
    name = "small_world"
    _check_nodes(name, nodes, 3)
    if degree < 2 or degree >= nodes:
        raise InputError(f"topology {name}: degree must be in [2, nodes), got {degree}")
    if not 0 <= rewire <= 1:
        raise InputError(f"topology {name}: rewire must be in [0, 1], got {rewire!r}")
    check_edges(name, nodes, nodes * (degree // 2))
    pieces = nodes * rewire
    chance = 1.0 if degree >= 4 or pieces <= 1 else (1.5 + 7 * rewire) / math.sqrt(pieces)
    why = (
        f"at degree {degree} each node keeps one ring link a side, so {nodes:,} nodes with "
        f"rewire {rewire:g} are almost never connected (P(connected) ~ "
        f"(1.5 + 7 rewire) / sqrt(nodes rewire) = {chance:.2g}); use degree >= 4"
    )
    return connected_draw(
        name,
        lambda s: nx.watts_strogatz_graph(nodes, degree, rewire, seed=s),
        seed,
        connect,
        chance,
        why,
    )


def barabasi_albert(nodes: int, *, seed: int | None = None, attach: int = 3) -> nx.Graph:
    """Preferential attachment, each new node linking to ``attach`` existing ones
    (average degree about ``2 * attach``; connected by construction).
    Barabási and Albert (1999), networkx's ``barabasi_albert_graph``: O(n + m)."""
    _check_nodes("barabasi_albert", nodes, 2)
    if not 1 <= attach < nodes:
        raise InputError(f"topology barabasi_albert: attach must be in [1, nodes), got {attach}")
    check_edges("barabasi_albert", nodes, (nodes - attach) * attach)
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
    check_edges("edge_cloud", nodes, nodes - 1)
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
