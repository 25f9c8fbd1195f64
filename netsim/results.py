"""The result of a run and its output directory.

::

    summary.json      scenario, params, seed, backend, sim_time, wall_time_s, events,
                      messages {sent, delivered, dropped, in_flight}, bytes_sent,
                      energy_J, final {metric: value} (+ final_notes: how)
    metrics.parquet   long format: time, step, node (-1 = network), metric, value
    failures.csv      the failures that happened (netsim trace v1: replayable)
    nodes.parquet     one row per node: ``node`` and every node attribute used
    links.parquet     one row per directed link: ``src``, ``dst`` and every link
                      attribute (parameters, combination ``weight``, ``bytes``)
    topology.graphml  the same graph as GraphML (one arc per directed link), when
                      it has at most outputs.GRAPHML_MAX_LINKS directed links or is asked for
    <table>.parquet   tables an algorithm adds (e.g. ``requests.parquet``: one row
                      per inference request)

Writing is atomic: files go to a temporary directory beside the target,
which is then renamed into place (or, when the target exists, each file is
renamed over the old one, ``summary.json`` last, and the old run's files this
one does not write are removed first). An interrupted write leaves
either the old run or the new one, never a half-written summary.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import pandas as pd

from netsim import outputs
from netsim.errors import InputError, first_line
from netsim.graph_tables import graph_from_tables, tables_from_graph
from netsim.outputs import check_writable, umask_mode
from netsim.traces import FailureEvent, format_trace, read_trace

FILES = ("metrics.parquet", "failures.csv", "nodes.parquet", "links.parquet", "summary.json")
GRAPHML = "topology.graphml"
RESERVED_TABLES = ("metrics", "nodes", "links")


@dataclass
class Result:
    """What a run produced; ``metrics`` is a long-format DataFrame; ``nodes``
    and ``links`` the graph as simulated, one row per node and per directed
    link (:mod:`netsim.graph_tables`); ``tables`` the algorithm's own tables by
    name (each written as ``<name>.parquet``)."""

    summary: dict[str, Any]
    metrics: pd.DataFrame
    failures: list[FailureEvent]
    nodes: pd.DataFrame
    links: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    _graph: nx.DiGraph | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def graph(self) -> nx.DiGraph:
        """The graph as simulated, one arc per directed link (what
        ``topology.graphml`` holds); built from the tables on first use, which
        costs about 2 s per 400,000 links."""
        if self._graph is None:
            self._graph = graph_from_tables(self.nodes, self.links)
        return self._graph

    @property
    def final(self) -> dict[str, float]:
        return dict(self.summary["final"])

    def series(self, metric: str, node: int = -1) -> pd.DataFrame:
        """Rows of ``metric`` for ``node`` (default: network-wide), by step."""
        m = self.metrics
        rows = m[(m["metric"] == metric) & (m["node"] == node)]
        if rows.empty:
            known = sorted(set(m.loc[m["node"] == node, "metric"]))
            where = "network-wide" if node == -1 else f"for node {node}"
            raise KeyError(f"no metric {metric!r} {where}; there are: {', '.join(known) or 'none'}")
        return (
            rows[["time", "step", "value"]]
            .sort_values("step", kind="stable")
            .reset_index(drop=True)
        )

    def failures_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "time": [e.time for e in self.failures],
                "target": [e.target for e in self.failures],
                "event": [e.event for e in self.failures],
                "value": [e.value for e in self.failures],
            }
        )

    def write(self, out: str | Path, force: bool = False, graphml: bool | None = None) -> Path:
        """Write the output directory atomically; returns its path. An
        existing run there is replaced only with ``force``. ``graphml``: write
        ``topology.graphml`` too (``None``: when the run has at most
        :data:`netsim.outputs.GRAPHML_MAX_LINKS` directed links)."""
        return write_run(self, Path(out), force, graphml)


def read_run_files(run: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A run directory's metrics and summary (InputError naming a missing or
    unreadable file)."""
    metrics_file, summary_file = run / "metrics.parquet", run / "summary.json"
    if not metrics_file.is_file() or not summary_file.is_file():
        raise InputError(f"{run}: not a netsim run directory (no metrics.parquet / summary.json)")
    try:
        metrics = pd.read_parquet(metrics_file)
    except Exception as e:  # pyarrow raises several kinds for a damaged file
        raise InputError(f"{metrics_file}: not a readable Parquet file ({first_line(e)})") from None
    try:
        summary = json.loads(summary_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{summary_file}: not valid JSON ({first_line(e)})") from None
    if not isinstance(summary, dict) or not {"metric", "node", "step"} <= set(metrics.columns):
        raise InputError(f"{run}: not a netsim run (unexpected contents)")
    return metrics, summary


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several kinds for a damaged file
        raise InputError(f"{path}: not a readable Parquet file ({first_line(e)})") from None


def _read_graph_tables(run: Path) -> tuple[pd.DataFrame, pd.DataFrame, nx.DiGraph | None]:
    """The node and link tables; from ``topology.graphml`` (then with its
    graph) for a run written before the tables existed."""
    if (run / "nodes.parquet").exists() or not (run / GRAPHML).exists():
        nodes, links = _read_parquet(run / "nodes.parquet"), _read_parquet(run / "links.parquet")
        for path, table, keys in (
            (run / "nodes.parquet", nodes, ["node"]),
            (run / "links.parquet", links, ["src", "dst"]),
        ):
            if not set(keys) <= set(table.columns):
                raise InputError(f"{path}: not a netsim table (no column {', '.join(keys)})")
        return nodes, links, None
    try:
        graph = nx.read_graphml(run / GRAPHML, node_type=int)
    except Exception as e:
        raise InputError(f"{run / GRAPHML}: unreadable ({first_line(e)})") from None
    nodes, links = tables_from_graph(graph)
    return nodes, links, graph


def load_run(path: str | Path) -> Result:
    """A run read back from its output directory (``result.graph`` is built
    from ``nodes.parquet`` and ``links.parquet`` when first used; runs written
    before those tables existed are read from ``topology.graphml``)."""
    run = Path(path)
    metrics, summary = read_run_files(run)
    failures = read_trace(run / "failures.csv")
    nodes, links, graph = _read_graph_tables(run)
    tables = {
        path.stem: _read_parquet(path)
        for path in sorted(run.glob("*.parquet"))
        if path.stem not in RESERVED_TABLES
    }
    result = Result(summary, metrics, failures, nodes, links, tables)
    result._graph = graph
    return result


DEVICE_METRICS = (
    "flops",
    "busy_s",
    "idle_s",
    "down_s",
    "bytes_sent",
    "bytes_received",
    "energy_J",
    "energy_compute_J",
    "energy_tx_J",
    "energy_rx_J",
    "energy_idle_J",
)


def device_table(result: Result) -> pd.DataFrame:
    """One row per device: its end-of-run totals (compute, time, bytes,
    energy) and its device class."""
    m = result.metrics
    rows = m[(m["node"] >= 0) & m["metric"].isin(DEVICE_METRICS)]
    table = rows.pivot_table(index="node", columns="metric", values="value", aggfunc="last")
    table = table[[c for c in DEVICE_METRICS if c in table.columns]]
    table.columns.name = None
    nodes = result.nodes
    if "device_class" in nodes.columns:
        classes = dict(zip(nodes["node"].tolist(), nodes["device_class"].tolist(), strict=True))
    else:
        classes = {}
    table.insert(
        0, "device_class", [c if isinstance(c, str) else "" for c in map(classes.get, table.index)]
    )
    return table


def class_table(result: Result) -> pd.DataFrame:
    """:func:`device_table` summed by device class (with a device count)."""
    devices = device_table(result)
    grouped = devices.groupby("device_class")
    out = grouped.sum(numeric_only=True)
    out.insert(0, "devices", grouped.size())
    return out


def check_output_dir(out: Path, force: bool = False) -> None:
    """Refuse (before anything runs) an output path that is a file, a
    non-empty directory that is not a netsim run, a run unless ``force``, or
    a place netsim cannot write."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not (out / "summary.json").exists():
            raise InputError(
                f"--out {out}: directory is not empty and holds no netsim run; choose another"
            )
        if not force:
            raise InputError(f"--out {out}: holds a run already; pass --force to replace it")
    check_writable(out, "--out")


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f if math.isfinite(f) else None


def write_run(result: Result, out: Path, force: bool = False, graphml: bool | None = None) -> Path:
    """Write ``result`` to ``out`` atomically (see the module's docstring);
    ``graphml`` as in :meth:`Result.write`."""
    check_output_dir(out, force)
    if graphml is None:
        graphml = len(result.links) <= outputs.GRAPHML_MAX_LINKS
    bad = sorted(set(result.tables) & set(RESERVED_TABLES))
    if bad:
        raise ValueError(f"table name {bad[0]!r}: reserved for the run's own files")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        tmp.chmod(umask_mode())  # mkdtemp makes it private
        result.metrics.to_parquet(tmp / "metrics.parquet", index=False)
        result.nodes.to_parquet(tmp / "nodes.parquet", index=False)
        result.links.to_parquet(tmp / "links.parquet", index=False)
        for name, table in result.tables.items():
            table.to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / "failures.csv").write_text(format_trace(result.failures), encoding="utf-8")
        if graphml:
            nx.write_graphml(result.graph, tmp / GRAPHML)
        summary = json.dumps(_json_safe(result.summary), indent=2, allow_nan=False)
        (tmp / "summary.json").write_text(summary + "\n", encoding="utf-8")
        if not out.exists():
            os.rename(tmp, out)
        else:
            written = [f"{name}.parquet" for name in result.tables]
            written += [GRAPHML] if graphml else []
            for stale in [*out.glob("*.parquet"), out / GRAPHML]:  # what this run lacks
                if stale.name not in (*FILES, *written) and stale.exists():
                    stale.unlink()
            for name in [*written, *FILES]:  # summary.json last: it marks a complete run
                os.replace(tmp / name, out / name)
            tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def render_run(result: Result, graphml: bool | None = None) -> dict[str, bytes]:
    """The files of ``result``'s output directory, as bytes by file name: what
    :func:`write_run` would write, formatted here (e.g. on a sweep worker, so
    that the driver only stores them, with :func:`write_rendered`)."""
    with tempfile.TemporaryDirectory(prefix="netsim-render-") as tmp:
        out = write_run(result, Path(tmp) / "run", graphml=graphml)
        return {p.name: p.read_bytes() for p in out.iterdir()}


def write_rendered(out: Path, files: dict[str, bytes]) -> Path:
    """Write a run directory rendered by :func:`render_run` to ``out``,
    atomically, replacing what is there (a run not recorded as done)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        tmp.chmod(umask_mode())
        for name, data in files.items():
            (tmp / Path(name).name).write_bytes(data)
        if out.exists():
            shutil.rmtree(out)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
