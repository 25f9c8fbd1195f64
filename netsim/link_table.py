"""The directed links of a topology as arrays: every undirected edge is two
links, indexed by receiver and by sender (CSR-style pointers), so that the
network, the failure model and algorithms look links up in O(log E)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import networkx as nx
import numpy as np


@dataclass(frozen=True)
class LinkTable:
    """The directed links of a topology, sorted by (receiver, sender).

    Links into node ``k`` are ``in_ptr[k]:in_ptr[k+1]``; ``out_links[out_ptr[u]:out_ptr[u+1]]``
    are the links out of ``u``.
    """

    n_nodes: int
    src: np.ndarray
    dst: np.ndarray
    in_ptr: np.ndarray
    out_ptr: np.ndarray
    out_links: np.ndarray

    @classmethod
    def from_graph(cls, graph: nx.Graph) -> LinkTable:
        edges = list(graph.edges())
        return cls.from_edges(graph.number_of_nodes(), edges, directed=graph.is_directed())[0]

    @classmethod
    def from_edges(
        cls, n: int, edges: list[tuple[int, int]] | np.ndarray, *, directed: bool
    ) -> tuple[LinkTable, np.ndarray]:
        """The table of ``n`` nodes and ``edges`` (each two links unless
        ``directed``: ``u -> v`` first, then every ``v -> u``), and the position
        in that list of links of each link of the table."""
        pairs = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
        if directed:
            return cls.sorted_from(n, pairs[:, 0], pairs[:, 1])
        src = np.concatenate([pairs[:, 0], pairs[:, 1]])
        dst = np.concatenate([pairs[:, 1], pairs[:, 0]])
        return cls.sorted_from(n, src, dst)

    @classmethod
    def from_arrays(cls, n: int, src: np.ndarray, dst: np.ndarray) -> LinkTable:
        """The table of the directed links ``src[i] -> dst[i]`` among ``n`` nodes."""
        return cls.sorted_from(n, src, dst)[0]

    @classmethod
    def sorted_from(cls, n: int, src: np.ndarray, dst: np.ndarray) -> tuple[LinkTable, np.ndarray]:
        """The table of the links ``src[i] -> dst[i]``, and ``order``: link ``k``
        of the table is ``src[order[k]] -> dst[order[k]]``."""
        src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
        order = np.lexsort((src, dst))
        src, dst = src[order], dst[order]
        in_ptr = np.concatenate([[0], np.cumsum(np.bincount(dst, minlength=n))])
        out_links = np.lexsort((dst, src))
        out_ptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n))])
        return cls(n, src, dst, in_ptr, out_ptr, out_links), order

    def __len__(self) -> int:
        return len(self.src)

    @cached_property
    def _keys(self) -> np.ndarray:
        """``dst * n + src`` of every link: sorted, as the links are."""
        return self.dst * self.n_nodes + self.src

    def index(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Link ids of the pairs ``src[i] -> dst[i]``; ``ValueError`` if one is not a link."""
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        keys = self._keys
        want = dst * self.n_nodes + src
        pos = np.searchsorted(keys, want)
        pos_c = np.minimum(pos, len(keys) - 1) if len(keys) else pos
        ok = (pos < len(keys)) & (keys[pos_c] == want) if len(keys) else np.zeros(len(want), bool)
        if not np.all(ok):
            i = int(np.flatnonzero(~ok)[0])
            raise ValueError(f"no link {int(src[i])}->{int(dst[i])} in the topology")
        return pos

    def degree_in(self) -> np.ndarray:
        return np.diff(self.in_ptr)
