"""A scenario validated and turned into the arrays the engine runs on.

:func:`prepare` checks the topology (node ids, self-loops, device and link
attributes, connectivity when the algorithm needs it) and derives the
directed-link table, node attributes as arrays, link parameters and
combination weights. It reads the scenario's graph without changing it, and
copies it only when attributes are missing (the defaults are filled into the
copy). Cost: a few passes over the node and edge dicts, each O(n + m) in C
where the values are plain numbers (about 1 us a node and 0.5 us an edge);
connectivity from the link arrays (scipy).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

import networkx as nx
import numpy as np
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

import topologies
from netsim.algorithm import Algorithm
from netsim.errors import InputError
from netsim.graph_tables import LINK_KEYS, NODE_KEYS
from netsim.link_table import LinkTable
from netsim.scenario import Scenario

_POSITIVE = ("compute_flops", "uplink_Bps", "downlink_Bps")
_NON_NEGATIVE = (
    "energy_per_flop_J",
    "energy_tx_per_byte_J",
    "energy_rx_per_byte_J",
    "idle_power_W",
)
_FILLED_NODE = (*topologies.DEVICE_ATTRIBUTES, "device_class")  # what assign_devices fills


@dataclass(frozen=True)
class Prepared:
    """A validated scenario, ready to simulate."""

    graph: nx.Graph
    links: LinkTable
    edges: list[tuple[int, int]]
    edge_data: list[dict[str, Any]]  # attributes of each of ``edges``
    edge_of_link: np.ndarray  # index into ``edges`` of each directed link
    node_arrays: dict[str, np.ndarray]
    link_weight: np.ndarray | None
    self_weight: np.ndarray | None
    node_floats: dict[str, np.ndarray]  # node attributes that are a float on every node
    edge_floats: dict[str, np.ndarray]  # edge attributes that are a float on every edge
    node_names: tuple[str, ...]  # every node attribute of the graph, sorted

    def link_array(self, name: str) -> np.ndarray:
        """Edge attribute ``name`` for every directed link."""
        per_edge = self.edge_floats.get(name)
        if per_edge is None:
            per_edge = np.array([d[name] for d in self.edge_data], dtype=float)
        return per_edge[self.edge_of_link] if len(per_edge) else np.zeros(0)

    def edge_names(self) -> list[str]:
        """Every edge attribute of the graph, sorted."""
        return sorted(Counter(chain.from_iterable(self.edge_data)))


BYTES_PER_ROW = 100  # a metric row held in Python lists, at least (measured about 120)


def check_size(algorithm: Any) -> None:
    """Refuse, with the estimate, a run whose metrics alone could not fit in
    this machine's memory: every iteration or round records at least one row."""
    for field_name in ("iterations", "rounds"):
        steps = getattr(algorithm, field_name, None)
        if not isinstance(steps, int):
            continue
        need = steps * BYTES_PER_ROW
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if need > memory:
            raise InputError(
                f"{field_name}={steps:,} would need at least {need / 1e9:,.0f} GB for the "
                f"metrics alone; this machine has {memory / 1e9:,.0f} GB"
            )


def _complete(n: int, node_keys: Counter[str], edge_data: list[dict[str, Any]]) -> bool:
    """Whether every node and edge has the attributes the models would fill."""
    if any(node_keys[name] < n for name in _FILLED_NODE):
        return False
    keys = Counter(chain.from_iterable(edge_data))
    return all(keys[name] == len(edge_data) for name in topologies.LINK_ATTRIBUTES)


class _Columns:
    """The values of attributes present in every dict of ``data``, read in one
    pass over the dicts (not one per attribute: at a million nodes each pass
    is a cache miss per dict); ``self[name]``: the list of ``name``'s values."""

    def __init__(self, data: list[dict[str, Any]], names: list[str]) -> None:
        self._data = data
        self._lists: dict[str, list[Any]] = {}
        if len(names) == 1:
            self._lists[names[0]] = [d[names[0]] for d in data]
        elif names:
            flat = list(chain.from_iterable(map(itemgetter(*names), data)))
            k = len(names)
            self._lists = {name: flat[j::k] for j, name in enumerate(names)}

    def __contains__(self, name: str) -> bool:
        return name in self._lists

    def __getitem__(self, name: str) -> list[Any]:
        values = self._lists.get(name)
        return values if values is not None else [d.get(name) for d in self._data]

    def floats(self, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """The attributes of ``names`` that are a ``float`` in every dict."""
        out = {}
        for name in names:
            if name in self and set(map(type, self[name])) == {float}:
                out[name] = np.array(self[name], dtype=np.float64)
        return out


def prepare(scenario: Scenario) -> Prepared:
    """Validate ``scenario`` and derive the arrays the engine runs on."""
    graph = scenario.graph
    n = graph.number_of_nodes()
    if n == 0:
        raise InputError(f"scenario {scenario.name!r}: the topology has no nodes")
    if type(graph) is not nx.Graph:  # directed or multi: as an undirected simple graph
        graph = nx.Graph(graph)
    node_items = list(graph.nodes(data=True))
    if sorted(k for k, _ in node_items) != list(range(n)):
        raise InputError(
            f"scenario {scenario.name!r}: topology nodes must be the integers 0..{n - 1} "
            "(topologies.load_graph renumbers file graphs)"
        )
    if nx.number_of_selfloops(graph):
        raise InputError(f"scenario {scenario.name!r}: the topology has self-loops")
    edge_items = [e for e in graph.edges(data=True)]  # list() would iterate it twice (len)
    node_keys = Counter(chain.from_iterable(d for _, d in node_items))
    if not _complete(n, node_keys, [e[2] for e in edge_items]):
        if graph is scenario.graph:
            graph = nx.Graph(graph)  # a copy; the user's graph is not touched
        topologies.assign_devices(graph, "homogeneous")  # fills only what is missing
        topologies.assign_links(graph)
        node_items = list(graph.nodes(data=True))
        edge_items = [e for e in graph.edges(data=True)]  # list() would iterate it twice (len)
        node_keys = Counter(chain.from_iterable(d for _, d in node_items))
    by_id = dict(node_items)
    node_data = [by_id[k] for k in range(n)]
    edge_data = [e[2] for e in edge_items]
    node_columns = _Columns(node_data, sorted(k for k, c in node_keys.items() if c == n))
    edge_columns = _Columns(edge_data, list(topologies.LINK_ATTRIBUTES))
    _check_attributes(node_items, edge_items, node_columns, edge_columns)
    algorithm = scenario.algorithm
    check_size(algorithm)
    edges = [(int(u), int(v)) for u, v, _ in edge_items]
    count = 2 * len(edges)  # an array from the flat ids: numpy.array of tuples is 2.5x slower
    pairs = np.fromiter(chain.from_iterable(edges), dtype=np.int64, count=count).reshape(-1, 2)
    links, order = LinkTable.from_edges(n, pairs, directed=False)
    if algorithm.needs_connected and n > 1:
        parts = _components(links)
        if parts > 1:
            raise InputError(
                f"the topology is disconnected ({parts} components); "
                f"{algorithm.name} needs a connected graph"
            )
    edge_of_link = order % len(edges) if len(edges) else links.src  # links: each edge twice
    node_arrays = _node_arrays(node_data, node_keys, node_columns, algorithm)
    node_names = tuple(sorted(node_keys))
    link_weight = self_weight = None
    if algorithm.combination is not None:
        # arcs in the order the link table was built from (u -> v, then v -> u)
        w = topologies.combination_weights(graph, algorithm.combination, pairs)
        link_weight = w.weight[order]
        self_weight = w.self_weight
    return Prepared(
        graph,
        links,
        edges,
        edge_data,
        edge_of_link,
        node_arrays,
        link_weight,
        self_weight,
        node_floats=node_columns.floats(node_names),
        edge_floats=edge_columns.floats(topologies.LINK_ATTRIBUTES),
        node_names=node_names,
    )


def _components(links: LinkTable) -> int:
    n = links.n_nodes
    adjacency = coo_array((np.ones(len(links), dtype=np.int8), (links.src, links.dst)), (n, n))
    return int(connected_components(adjacency, directed=False, return_labels=False))


def _numbers(values: list[Any]) -> np.ndarray | None:
    """``values`` as floats when every one is an ``int`` or ``float`` (no
    ``bool``), checked by type in C; ``None`` otherwise."""
    if not set(map(type, values)) <= {float, int}:
        return None
    try:
        return np.array(values, dtype=float)
    except OverflowError:
        return None


def _check_attributes(
    node_items: list[tuple[Any, dict]],
    edge_items: list[tuple],
    node_columns: _Columns,
    edge_columns: _Columns,
) -> None:
    """Device and link attributes: numbers in range (checked as arrays; the
    first bad value, in the graph's order, named in the error)."""

    def bad(where: str, name: str, value: Any, expected: str) -> InputError:
        return InputError(f"topology {where}: {name}: expected {expected}, got {value!r}")

    def reserved(where: str, name: str, table: str) -> InputError:
        return InputError(f"topology {where}: attribute {name!r} is reserved (an id in {table})")

    for k, data in node_items:
        for name in NODE_KEYS:
            if name in data:
                raise reserved(f"node {k}", name, "nodes.parquet")
    for name in _POSITIVE + _NON_NEGATIVE:
        fast = _numbers(node_columns[name])
        if fast is not None:
            low_ok = fast > 0 if name in _POSITIVE else fast >= 0
            if np.all(np.isfinite(fast) & low_ok):
                continue
        for k, data in node_items:  # find the first bad one
            value = data[name]
            ok = isinstance(value, int | float) and math.isfinite(value)
            if not ok or (value <= 0 if name in _POSITIVE else value < 0):
                expected = "a finite number > 0" if name in _POSITIVE else "a finite number >= 0"
                raise bad(f"node {k}", name, value, expected)
    for k, data in node_items:
        battery = data.get("battery_J", math.inf)
        if not (isinstance(battery, int | float) and battery > 0):
            raise bad(f"node {k}", "battery_J", battery, "a number > 0 (inf: no battery)")
    if not edge_items:
        return
    for name in LINK_KEYS:
        if any(name in e[2] for e in edge_items):
            u, v, _ = next(e for e in edge_items if name in e[2])
            raise reserved(f"link {u}-{v}", name, "links.parquet")
    latency = _numbers(edge_columns["latency_s"])
    bandwidth = _numbers(edge_columns["bandwidth_Bps"])
    loss = _numbers(edge_columns["loss"])
    if (
        latency is not None
        and loss is not None
        and bandwidth is not None
        and np.all(np.isfinite(latency) & (latency >= 0))
        and np.all(bandwidth > 0)
        and np.all((loss >= 0) & (loss < 1))
    ):
        return
    for u, v, data in edge_items:  # find the first bad one
        lat, bw, p = data["latency_s"], data["bandwidth_Bps"], data["loss"]
        if not (isinstance(lat, int | float) and math.isfinite(lat) and lat >= 0):
            raise bad(f"link {u}-{v}", "latency_s", lat, "a finite number >= 0")
        if not (isinstance(bw, int | float) and bw > 0):
            raise bad(f"link {u}-{v}", "bandwidth_Bps", bw, "a number > 0 (inf: no cap)")
        if not (isinstance(p, int | float) and 0 <= p < 1):
            raise bad(f"link {u}-{v}", "loss", p, "a probability in [0, 1)")


def _node_arrays(
    node_data: list[dict[str, Any]],
    counts: Counter[str],
    columns: _Columns,
    algorithm: Algorithm,
) -> dict[str, np.ndarray]:
    """Node attributes as arrays by node id (``node_data[k]``: node ``k``'s):
    numbers present on every node as floats; anything else (e.g. a model
    prototype's name) as objects, ``None`` where a node lacks it."""
    n = len(node_data)
    names = {name for name, c in counts.items() if c == n}
    for name in algorithm.node_attributes:
        if name not in names:
            missing = next(k for k, d in enumerate(node_data) if name not in d)
            raise InputError(
                f"topology node {missing}: attribute {name!r} missing "
                f"({algorithm.name} needs {', '.join(algorithm.node_attributes)} on every node)"
            )
    arrays = {}
    for name in sorted(names):
        values = columns[name]
        numbers = _numbers(values)
        if numbers is None and all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in values
        ):
            numbers = np.array(values, dtype=float)
        if numbers is not None:
            arrays[name] = numbers
        else:
            arrays[name] = np.empty(n, dtype=object)
            arrays[name][:] = values
    for name in sorted(set(counts) - names):
        arrays[name] = np.empty(n, dtype=object)
        arrays[name][:] = [d.get(name) for d in node_data]
    if "battery_J" not in arrays or arrays["battery_J"].dtype == object:
        arrays["battery_J"] = np.array([float(d.get("battery_J", math.inf)) for d in node_data])
    for name in algorithm.node_attributes:
        if (
            name not in arrays
            or arrays[name].dtype == object
            or not np.all(np.isfinite(arrays[name]))
        ):
            raise InputError(
                f"topology: node attribute {name!r} must be a finite number on every node"
            )
    return arrays
