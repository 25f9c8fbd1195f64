"""Routing for server-based algorithms: messages between a server and its
clients travel along the edges of a breadth-first tree rooted at the server
(a star: one hop; the two-tier edge-cloud hierarchy: through the edge
servers). Leaves are clients; inner nodes relay, or aggregate what their
clients send (edge aggregation).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from netsim.errors import InputError
from netsim.link_table import LinkTable


def bfs_parents(links: LinkTable, root: int) -> np.ndarray:
    """``parent[v]`` on a BFS tree from ``root`` (neighbours visited in id
    order); ``-1`` for the root and for nodes it cannot reach."""
    n = links.n_nodes
    if not 0 <= root < n:
        raise InputError(f"server: node {root} is not in the topology (nodes 0..{n - 1})")
    parent = np.full(n, -2, dtype=np.int64)
    parent[root] = -1
    queue = deque([root])
    while queue:
        u = queue.popleft()
        out = links.out_links[links.out_ptr[u] : links.out_ptr[u + 1]]
        for v in sorted(int(x) for x in links.dst[out]):
            if parent[v] == -2:
                parent[v] = u
                queue.append(v)
    parent[parent == -2] = -1
    return parent


def leaves(parent: np.ndarray, root: int) -> np.ndarray:
    """Reachable nodes other than ``root`` with no children, in id order."""
    reached = parent >= 0
    has_child = np.zeros(len(parent), dtype=bool)
    has_child[parent[reached]] = True
    return np.flatnonzero(reached & ~has_child)


class Route:
    """The routing tree of one server: parents, clients (the leaves), and the
    clients below each inner node."""

    def __init__(self, links: LinkTable, server: int) -> None:
        self.server = server
        self.parent = bfs_parents(links, server)
        self.clients = [int(c) for c in leaves(self.parent, server)]
        self.below: dict[int, list[int]] = {}  # inner node -> its clients
        for c in self.clients:
            node = int(self.parent[c])
            while node >= 0 and node != server:
                self.below.setdefault(node, []).append(c)
                node = int(self.parent[node])

    def path(self, node: int) -> list[int]:
        """``[node, parent, ..., server]``."""
        path = [node]
        while int(self.parent[path[-1]]) >= 0:
            path.append(int(self.parent[path[-1]]))
        return path

    def next_hops(self, node: int, clients: list[int]) -> dict[int, list[int]]:
        """The children of ``node`` towards ``clients`` (all below it), each with
        the clients it leads to."""
        hops: dict[int, list[int]] = {}
        for c in clients:
            hop = c
            while int(self.parent[hop]) != node:
                hop = int(self.parent[hop])
            hops.setdefault(hop, []).append(c)
        return dict(sorted(hops.items()))


def client_list(links: LinkTable, server: int) -> list[int]:
    """The clients of ``server``: the leaves of its routing tree."""
    return Route(links, server).clients
