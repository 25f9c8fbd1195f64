"""Size limits and connectivity of random graphs: refuse, before drawing,
a graph too large to build or one that would almost never be connected, and
make a draw connected as ``connect`` says (redraw, keep the giant component,
or bridge the components). Used by :mod:`topologies.generators`.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable

import networkx as nx
import numpy as np

from netsim.errors import InputError

MAX_DRAWS = 100  # redraws of a random graph before giving up on connectivity
CONNECT = ("redraw", "giant", "bridge")  # how a random graph is made connected
MAX_EDGES = 20_000_000  # larger graphs are refused: several GB, minutes to build
# networkx's memory, measured with networkx 3.6 on CPython 3.11 (peak resident
# memory): complete_graph(n) for n = 1,000 to 4,000 costs 138-139 bytes an edge
# (the edge's attribute dict and its entry in both adjacency dicts), and
# empty_graph(1,000,000) 253 bytes a node; link attributes add more.
EDGE_BYTES, NODE_BYTES = 140, 250
OPTIONS = (
    "connect='giant' (keep the largest component) or "
    "connect='bridge' (add the fewest edges that connect it)"
)


def memory_text(nbytes: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes / 1e3:.3g} kB"


def check_edges(
    name: str, nodes: int, edges: float, *, expected: bool = False, more: str = ""
) -> None:
    """Refuse, before building anything, a graph of more than MAX_EDGES edges."""
    if edges <= MAX_EDGES:
        return
    memory = memory_text(EDGE_BYTES * edges + NODE_BYTES * nodes)
    about = "about " if expected else ""
    raise InputError(
        f"topology {name}: {nodes:,} nodes would have {about}{edges:,.0f} edges, about "
        f"{memory} as a networkx graph ({EDGE_BYTES} bytes an edge, {NODE_BYTES} a node); "
        f"the limit is {MAX_EDGES:,} edges{more}"
    )


def check_degree(name: str, degree: float) -> None:
    if not isinstance(degree, (int, float)) or isinstance(degree, bool) or not degree > 0:
        raise InputError(f"topology {name}: degree must be a number > 0, got {degree!r}")


def count_text(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def chance_text(isolated: float) -> str:
    """P(a draw is connected) <= P(no isolated node) ~ exp(-E[isolated nodes])."""
    return f"~{math.exp(-isolated):.2g}" if isolated < 700 else f"~e^-{isolated:.0f}"


def components(g: nx.Graph) -> list[list[int]]:
    """Connected components of a graph on ``0..n-1``, each an ascending list,
    ordered by their smallest node. O(n + m)."""
    label = [0] * g.number_of_nodes()
    for i, component in enumerate(nx.connected_components(g)):
        for v in component:
            label[v] = i
    position: dict[int, int] = {}
    members: list[list[int]] = []
    for v, i in enumerate(label):
        if i not in position:
            position[i] = len(members)
            members.append([])
        members[position[i]].append(v)
    return members


def renumbered(g: nx.Graph, keep: list[int]) -> nx.Graph:
    """The subgraph on ``keep`` (ascending), renumbered ``0..len(keep)-1`` in order."""
    new = {v: k for k, v in enumerate(keep)}
    h = nx.Graph()
    h.graph.update(g.graph)
    h.add_nodes_from((new[v], g.nodes[v]) for v in keep)
    h.add_edges_from(
        (new[u], new[v], d) if d else (new[u], new[v])  # (a pair is added faster)
        for u in keep
        for v, d in g.adj[u].items()
        if u < v
    )
    return h


def connected_draw(
    name: str,
    draw: Callable[[int], nx.Graph],
    seed: int | None,
    connect: str,
    chance: float,
    why: str,
) -> nx.Graph:
    """A connected graph from ``draw(s)``, the seeds ``s`` drawn from ``seed``.

    ``connect`` is ``"redraw"`` (redraw until connected, at most MAX_DRAWS
    times; refused at once when ``chance``, an upper estimate of the
    probability that a draw is connected, is below 1 / MAX_DRAWS, with ``why``
    as the reason), ``"giant"`` (one draw, its largest component renumbered in
    order; the first of equal ones) or ``"bridge"`` (one draw, plus one edge
    between random members of each two consecutive components, ordered by their
    smallest node: components - 1 edges, the fewest that connect it). The
    first draw is the same whatever ``connect``. O(n + m) a draw.
    """
    if connect not in CONNECT:
        raise InputError(
            f"topology {name}: connect must be one of {', '.join(CONNECT)}, got {connect!r}"
        )
    if connect == "redraw" and chance < 1 / MAX_DRAWS:
        raise InputError(f"topology {name}: {why}, or pass {OPTIONS}")
    rng = random.Random(seed)
    if connect == "redraw":
        for _ in range(MAX_DRAWS):
            g = draw(rng.randrange(2**32))
            if nx.is_connected(g):
                return g
        raise InputError(
            f"topology {name}: no connected graph in {MAX_DRAWS} draws; {why}, or pass {OPTIONS}"
        )
    g = draw(rng.randrange(2**32))
    parts = components(g)
    if connect == "giant":
        giant = max(parts, key=len)
        if len(giant) < 2:
            raise InputError(f"topology {name}: the largest component has 1 node; raise degree")
        return g if len(giant) == g.number_of_nodes() else renumbered(g, giant)
    for a, b in itertools.pairwise(parts):
        g.add_edge(rng.choice(a), rng.choice(b))
    return g


def isolated_geometric(nodes: int, degree: float) -> float:
    """Expected isolated nodes of a random geometric graph in the unit square
    with ``pi r^2 nodes = degree``: ``n E[exp(-n area(disc(x, r) & square))]``,
    the disc cut by the sides and corners. O(1); 0 for ``r >= 1/2`` (tiny graphs).
    """
    from scipy.integrate import trapezoid  # here, not at import: SciPy takes a second to load

    r = math.sqrt(degree / (math.pi * nodes))
    if r >= 0.5:
        return 0.0
    s = np.linspace(0.0, 1.0, 401)  # distance to a side, in radii

    def cut(h: np.ndarray) -> np.ndarray:  # unit disc's area beyond a line at h
        return np.arccos(h) - h * np.sqrt(1 - h * h)

    def alone(lost: np.ndarray) -> np.ndarray:  # P(no neighbour) with `lost` cut off
        return np.exp(-degree * (1 - lost / math.pi))

    def area(t: np.ndarray) -> np.ndarray:  # integral of sqrt(1 - t^2)
        return (t * np.sqrt(1 - t * t) + np.arcsin(t)) / 2

    s1, s2 = np.meshgrid(s, s)
    top = np.sqrt(1 - s2 * s2)
    low = np.minimum(s1, top)
    both = area(top) - area(low) - s2 * (top - low)  # beyond both sides of a corner
    interior = (1 - 2 * r) ** 2 * math.exp(-degree)
    sides = 4 * (1 - 2 * r) * r * trapezoid(alone(cut(s)), s)
    corners = 4 * r * r * trapezoid(trapezoid(alone(cut(s1) + cut(s2) - both), s), s)
    return float(nodes * (interior + sides + corners))
