"""Routing trees for server-based algorithms: messages between a server and
its clients travel along the edges of a breadth-first tree rooted at the
server (a star: one hop; the two-tier edge-cloud hierarchy: through the edge
servers). Leaves are clients; inner nodes relay and aggregate.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from netsim.errors import InputError
from netsim.network import LinkTable


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


def path_to_root(parent: np.ndarray, node: int) -> list[int]:
    """``[node, parent, ..., root]``."""
    path = [node]
    while parent[path[-1]] >= 0:
        path.append(int(parent[path[-1]]))
    return path
