"""Combination weights for consensus and diffusion.

Convention (Sayed 2014): ``A`` is left-stochastic, ``a_lk`` is the weight node
``k`` gives to the value it hears from neighbour ``l``; every column of ``A``
sums to 1 and ``a_lk = 0`` unless ``l`` is ``k`` or one of its neighbours.

- Metropolis: ``a_lk = 1 / max(n_k, n_l)`` with ``n = degree + 1``; ``a_kk`` makes
  the column sum to 1. Symmetric, hence doubly stochastic.
- uniform: ``a_lk = 1 / n_k`` for ``l`` in the closed neighbourhood of ``k``.
  Left-stochastic only.
- Laplacian: ``A = I - L / (d_max + 1)`` with ``L`` the graph Laplacian and
  ``d_max`` the largest degree. Symmetric, doubly stochastic, ``a_kk > 0``.

Each rule costs O(N + E).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import networkx as nx
import numpy as np

from netsim.errors import InputError


@dataclass(frozen=True)
class CombinationWeights:
    """``weight[i]`` is ``a_{src[i], dst[i]}`` over both directions of every edge."""

    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray
    self_weight: np.ndarray

    def matrix(self) -> np.ndarray:
        """The dense ``N x N`` matrix ``A`` (``A[l, k] = a_lk``)."""
        n = len(self.self_weight)
        a = np.zeros((n, n))
        a[self.src, self.dst] = self.weight
        a[np.arange(n), np.arange(n)] = self.self_weight
        return a


def _arcs(
    graph: nx.Graph, edges: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both directions of every edge, and the node degrees (``edges``: the
    graph's edges in its own order, when the caller has them)."""
    if graph.is_directed():
        raise InputError("combination weights need an undirected graph")
    n = graph.number_of_nodes()
    if edges is None:
        edges = np.array(list(graph.edges()), dtype=np.int64)
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    src = np.concatenate([edges[:, 0], edges[:, 1]])
    dst = np.concatenate([edges[:, 1], edges[:, 0]])
    degree = np.bincount(dst, minlength=n)
    return src, dst, degree


def _self_weights(n: int, dst: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return 1.0 - np.bincount(dst, weights=weight, minlength=n)


def metropolis(graph: nx.Graph, edges: np.ndarray | None = None) -> CombinationWeights:
    """Metropolis (-Hastings) weights."""
    src, dst, degree = _arcs(graph, edges)
    w = 1.0 / np.maximum(degree[src] + 1, degree[dst] + 1)
    return CombinationWeights(src, dst, w, _self_weights(len(degree), dst, w))


def uniform(graph: nx.Graph, edges: np.ndarray | None = None) -> CombinationWeights:
    """Uniform (averaging) weights over the closed neighbourhood."""
    src, dst, degree = _arcs(graph, edges)
    w = 1.0 / (degree[dst] + 1)
    return CombinationWeights(src, dst, w, 1.0 / (degree + 1))


def laplacian(graph: nx.Graph, edges: np.ndarray | None = None) -> CombinationWeights:
    """``A = I - L / (d_max + 1)``."""
    src, dst, degree = _arcs(graph, edges)
    alpha = 1.0 / (int(degree.max(initial=0)) + 1)
    w = np.full(len(src), alpha)
    return CombinationWeights(src, dst, w, 1.0 - alpha * degree)


RULES: dict[str, Callable[[nx.Graph, np.ndarray | None], CombinationWeights]] = {
    "metropolis": metropolis,
    "uniform": uniform,
    "laplacian": laplacian,
}


def combination_weights(
    graph: nx.Graph, rule: str, edges: np.ndarray | None = None
) -> CombinationWeights:
    """The weights of ``rule`` (one of :data:`RULES`) on ``graph``; ``edges``:
    ``graph.edges()`` as an array, if the caller has it (saves a pass over the graph)."""
    try:
        return RULES[rule](graph, edges)
    except KeyError:
        raise InputError(
            f"unknown combination rule {rule!r}; expected one of {', '.join(RULES)}"
        ) from None


def slem(matrix: np.ndarray) -> float:
    """Second largest eigenvalue modulus of a stochastic matrix: the asymptotic
    per-step contraction of the consensus error ``x(t+1) = W x(t)``. O(N^3)."""
    moduli = np.sort(np.abs(np.linalg.eigvals(matrix)))[::-1]
    return float(moduli[1]) if len(moduli) > 1 else 0.0
