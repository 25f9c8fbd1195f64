"""Loading user topologies from GraphML or edge-list files.

Nodes are renumbered ``0 .. N-1`` (the simulator, the traces and the output
all use these ids). Labels that are already exactly ``0 .. N-1`` are kept;
otherwise nodes are numbered in sorted label order and the original label is
kept in the node attribute ``label``.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx

from netsim.errors import InputError

EDGE_LIST_SUFFIXES = {".edgelist", ".edges", ".txt", ".csv"}


def load_graph(path: str | Path) -> nx.Graph:
    """Read ``path`` (``.graphml``, or an edge list: ``.edgelist``/``.edges``/``.txt``/``.csv``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: topology file not found")
    suffix = path.suffix.lower()
    if suffix == ".graphml":
        graph = _read_graphml(path)
    elif suffix in EDGE_LIST_SUFFIXES:
        graph = _read_edge_list(path)
    else:
        raise InputError(
            f"{path}: unknown topology file type {suffix!r}; expected .graphml or an edge list "
            f"({', '.join(sorted(EDGE_LIST_SUFFIXES))})"
        )
    if graph.number_of_nodes() == 0:
        raise InputError(f"{path}: the graph has no nodes")
    if graph.is_directed():
        raise InputError(f"{path}: directed graphs are not supported; use an undirected graph")
    if nx.number_of_selfloops(graph):
        u, _ = next(iter(nx.selfloop_edges(graph)))
        raise InputError(f"{path}: self-loop on node {u!r}; links must join two different nodes")
    return renumber(graph)


def _read_graphml(path: Path) -> nx.Graph:
    try:
        graph = nx.read_graphml(path)
    except (ET.ParseError, nx.NetworkXError, ValueError, KeyError) as e:
        raise InputError(f"{path}: not a valid GraphML file: {e}") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    if graph.is_multigraph():
        raise InputError(f"{path}: multigraphs (parallel links) are not supported")
    return graph


def _parse_value(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def _read_edge_list(path: Path) -> nx.Graph:
    """Lines ``u v [name=value ...]`` (whitespace or commas); ``#`` starts a comment."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text edge list (binary content)") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    graph = nx.Graph()
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].replace(",", " ").strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) < 2:
            raise InputError(
                f"{path}:{number}: expected 'u v [name=value ...]', got {raw.strip()!r}"
            )
        u, v, *rest = fields
        attrs: dict[str, float | str] = {}
        for item in rest:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise InputError(f"{path}:{number}: expected name=value, got {item!r}")
            attrs[name] = _parse_value(value)
        graph.add_edge(u, v, **attrs)
    return graph


def renumber(graph: nx.Graph) -> nx.Graph:
    """Relabel nodes to ``0 .. N-1`` (see the module docstring)."""
    labels = list(graph.nodes)
    ints = [_as_int(x) for x in labels]
    numeric = [i for i in ints if i is not None]
    keep = len(numeric) == len(labels) and sorted(numeric) == list(range(len(labels)))
    if keep:
        out = nx.relabel_nodes(graph, dict(zip(labels, numeric, strict=True)))
    else:
        if len(numeric) == len(labels):  # integers, but not 0..N-1: keep their order
            order = [x for _, x in sorted(zip(numeric, labels, strict=True), key=lambda p: p[0])]
        else:
            order = sorted(labels, key=str)
        mapping = {x: i for i, x in enumerate(order)}
        out = nx.relabel_nodes(graph, mapping)
        for x, i in mapping.items():
            out.nodes[i]["label"] = str(x)
    ordered = nx.Graph()
    ordered.add_nodes_from(sorted(out.nodes(data=True)))
    ordered.add_edges_from(out.edges(data=True))
    ordered.graph.update(graph.graph)
    return ordered


def _as_int(x: object) -> int | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, int):
        return x
    if isinstance(x, float) and math.isfinite(x) and x.is_integer():
        return int(x)
    if isinstance(x, str):
        try:
            return int(x)
        except ValueError:
            return None
    return None
