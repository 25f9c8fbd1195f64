"""A run's graph as two tables: one row per node, one row per directed link.

``nodes``: column ``node`` (int64, the node id, in id order) and one column
per node attribute; ``links``: columns ``src`` and ``dst`` (int64) and one
column per link attribute, in the order of the run's directed links. Each
attribute column has one type: int64, float64, bool or string (a column
mixing integers and floats is float64; anything else mixed, or of another
kind, is written as text, as GraphML would). An element without an
attribute holds a null there (a nullable pandas dtype in the DataFrame).

The tables are what the runner writes (``nodes.parquet``, ``links.parquet``)
and reads back; :func:`graph_from_tables` gives the ``nx.DiGraph`` that
``topology.graphml`` holds, with the same node ids, attributes and types.
Building the tables is vectorised (one :func:`pyarrow.array` per column);
building the graph costs a Python dict per node and per link (about 2 s for
400,000 links), which is why it is done only when asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np
import pandas as pd
import pyarrow as pa

if TYPE_CHECKING:
    from netsim.prepare import Prepared

NODE_KEYS = ("node",)
LINK_KEYS = ("src", "dst")

_NULLABLE = {
    pa.int64(): pd.Int64Dtype(),
    pa.float64(): pd.Float64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def _text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(float(value))
    return str(value)


def attribute_column(values: Sequence[Any]) -> pa.Array:
    """One attribute's values (``None``: absent) as an int64, float64, bool or
    string array; O(len(values)), in C unless the values mix types."""
    try:
        column = pa.array(values, from_pandas=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        column = None
    if column is not None:
        kind = column.type
        if pa.types.is_integer(kind):
            return column.cast(pa.int64())
        if pa.types.is_floating(kind):
            return column.cast(pa.float64())
        if pa.types.is_boolean(kind) or pa.types.is_string(kind):
            return column
    numbers = [
        v for v in values if isinstance(v, int | float | np.number) and not isinstance(v, bool)
    ]
    if len(numbers) == sum(v is not None for v in values):  # ints mixed with floats
        return pa.array([None if v is None else float(v) for v in values], type=pa.float64())
    return pa.array([_text(v) for v in values], type=pa.string())


def frame(columns: Mapping[str, pa.Array | np.ndarray]) -> pd.DataFrame:
    """A DataFrame of ``columns``: numpy dtypes where a column has no nulls,
    nullable pandas dtypes where it has."""
    out = {}
    for name, column in columns.items():
        if isinstance(column, np.ndarray):
            out[name] = column
        elif column.null_count == 0:
            out[name] = column.to_pandas()
        else:
            out[name] = column.to_pandas(types_mapper=_NULLABLE.get)
    return pd.DataFrame(out)


def _numpy_numbers(series: pd.Series) -> bool:
    """Whether ``series`` has a numpy number dtype (no nulls: a NaN is a value)."""
    return isinstance(series.dtype, np.dtype) and series.dtype.kind in "biuf"


def _values(series: pd.Series) -> list[Any]:
    """Python values of ``series``; ``None`` where absent (a float NaN in a
    column without nulls is a value)."""
    if _numpy_numbers(series):
        return series.tolist()
    absent = series.isna().tolist()
    return [
        None if gone else v.item() if isinstance(v, np.generic) else v
        for gone, v in zip(absent, series.astype(object).tolist(), strict=True)
    ]


def _records(table: pd.DataFrame, skip: tuple[str, ...]) -> list[dict[str, Any]]:
    names = [c for c in table.columns if c not in skip]
    columns = [_values(table[c]) for c in names]
    if not any(not _numpy_numbers(table[c]) and table[c].isna().any() for c in names):
        return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
    return [
        {k: v for k, v in zip(names, row, strict=True) if v is not None}
        for row in zip(*columns, strict=True)
    ]


def graph_from_tables(nodes: pd.DataFrame, links: pd.DataFrame) -> nx.DiGraph:
    """The directed graph the tables describe (what ``topology.graphml`` holds)."""
    graph = nx.DiGraph()
    ids = nodes["node"].tolist() if len(nodes) else []
    graph.add_nodes_from(zip(ids, _records(nodes, NODE_KEYS), strict=True))
    src, dst = links["src"].tolist(), links["dst"].tolist()
    graph.add_edges_from(zip(src, dst, _records(links, LINK_KEYS), strict=True))
    return graph


def tables_from_graph(graph: nx.DiGraph) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``graph``'s node and link tables (e.g. of a run written before the
    tables existed, read from its GraphML)."""
    ids = sorted(graph.nodes)
    node_data = [graph.nodes[k] for k in ids]
    edges = list(graph.edges(data=True))
    node_columns: dict[str, Any] = {"node": np.array(ids, dtype=np.int64)}
    for name in sorted(set().union(*node_data)):
        node_columns[name] = attribute_column([d.get(name) for d in node_data])
    link_columns: dict[str, Any] = {
        "src": np.array([u for u, _, _ in edges], dtype=np.int64),
        "dst": np.array([v for _, v, _ in edges], dtype=np.int64),
    }
    for name in sorted(set().union(*(d for *_, d in edges))):
        link_columns[name] = attribute_column([d.get(name) for *_, d in edges])
    return frame(node_columns), frame(link_columns)


def run_tables(prepared: Prepared, link_bytes: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The graph as simulated, as a node table (every attribute used, and
    ``self_weight`` when the algorithm combines) and a directed-link table
    (the link's parameters, its combination ``weight`` and the ``bytes``
    that crossed it); one :func:`attribute_column` per attribute."""
    graph, links = prepared.graph, prepared.links
    n = graph.number_of_nodes()
    node_data: list[dict[str, Any]] | None = None
    nodes: dict[str, Any] = {"node": np.arange(n, dtype=np.int64)}
    for name in prepared.node_names:
        if name in prepared.node_floats:  # floats everywhere: the array is the column
            nodes[name] = prepared.node_floats[name]
            continue
        if node_data is None:
            node_data = [graph.nodes[k] for k in range(n)]
        nodes[name] = attribute_column([d.get(name) for d in node_data])
    if prepared.self_weight is not None:
        nodes["self_weight"] = np.asarray(prepared.self_weight, dtype=float)
    link_table: dict[str, Any] = {
        "src": links.src.astype(np.int64),
        "dst": links.dst.astype(np.int64),
    }
    which = pa.array(prepared.edge_of_link.astype(np.int64))
    for name in prepared.edge_names():
        floats = prepared.edge_floats.get(name)
        if floats is not None:
            link_table[name] = floats[prepared.edge_of_link]
            continue
        per_edge = attribute_column([d.get(name) for d in prepared.edge_data])
        link_table[name] = per_edge.take(which)
    if prepared.link_weight is not None:
        link_table["weight"] = np.asarray(prepared.link_weight, dtype=float)
    link_table["bytes"] = np.asarray(link_bytes, dtype=float)
    return frame(nodes), frame(link_table)
