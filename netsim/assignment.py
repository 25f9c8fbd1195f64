"""Which host holds which device: graph-aware blocks, and how many messages
cross hosts.

A message between devices on one host never leaves that host's process; one
between hosts travels through Ray's object store (and, on a cluster, the
network). :func:`assign_hosts` orders the devices by reverse Cuthill–McKee
(neighbours get nearby positions, so the bandwidth of the adjacency matrix is
small) and cuts that order into contiguous blocks of nearly equal size: on
rings, grids, tori and other sparse graphs with locality, few links cross a
cut. ``"blocks"`` cuts the id order instead (the assignment before graph-aware
placement). Results never depend on the assignment (kernels are per-device);
only where the work runs does.

References
----------
E. Cuthill and J. McKee, "Reducing the bandwidth of sparse symmetric
matrices", ACM National Conference, 1969.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Placement = Literal["graph", "blocks"]
PLACEMENTS: tuple[str, ...] = ("graph", "blocks")


def blocks(n_devices: int, hosts: int) -> np.ndarray:
    """Host of each device: contiguous blocks of ids, of nearly equal size."""
    if hosts < 1:
        raise ValueError("hosts must be >= 1")
    return (np.arange(n_devices) * hosts) // max(n_devices, 1)


def graph_order(n_devices: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The devices in reverse Cuthill–McKee order of the (symmetrized) link
    graph. Cost: O(n + m log d) time (scipy sorts each BFS level's neighbours
    by degree), O(n + m) memory."""
    from scipy import sparse
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    if len(src) == 0:
        return np.arange(n_devices)
    ones = np.ones(len(src), dtype=np.int8)
    adjacency = sparse.csr_array((ones, (src, dst)), shape=(n_devices, n_devices))
    adjacency = (adjacency + adjacency.T).tocsr()
    return np.asarray(reverse_cuthill_mckee(adjacency, symmetric_mode=True), dtype=np.int64)


def assign_hosts(
    n_devices: int,
    hosts: int,
    src: np.ndarray,
    dst: np.ndarray,
    placement: Placement = "graph",
) -> np.ndarray:
    """Host of each device (``hosts`` blocks of nearly equal size) for the
    directed links ``src[e] -> dst[e]``: ``"graph"`` cuts the reverse
    Cuthill–McKee order, ``"blocks"`` the id order. One host: all on host 0."""
    if placement not in PLACEMENTS:
        raise ValueError(f"placement: expected one of {', '.join(PLACEMENTS)}, got {placement!r}")
    assignment = blocks(n_devices, hosts)
    if placement == "blocks" or hosts <= 1 or hosts >= n_devices:
        return assignment
    order = graph_order(n_devices, np.asarray(src), np.asarray(dst))
    out = np.empty(n_devices, dtype=np.int64)
    out[order] = assignment
    return out


def cross_fraction(assignment: np.ndarray, src: np.ndarray, dst: np.ndarray) -> float:
    """Fraction of the directed links ``src[e] -> dst[e]`` whose ends are on
    different hosts: of the messages sent over links, the share that crosses
    hosts when every link carries as many (0 when there are no links)."""
    if len(src) == 0:
        return 0.0
    return float(np.mean(assignment[src] != assignment[dst]))


def crossing_messages(assignment: np.ndarray, src: np.ndarray, dst: np.ndarray) -> int:
    """How many of the messages ``src[j] -> dst[j]`` cross hosts."""
    return int(np.count_nonzero(assignment[src] != assignment[dst]))
