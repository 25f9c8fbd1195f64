"""The result of a run and its output directory.

::

    summary.json      scenario, params, seed, backend, sim_time, wall_time_s, events,
                      messages {sent, delivered, dropped, in_flight}, bytes_sent,
                      energy_J, final {metric: value} (+ final_notes: how)
    metrics.parquet   long format: time, step, node (-1 = network), metric, value
    failures.csv      the failures that happened (netsim trace v1: replayable)
    topology.graphml  the graph as simulated (one arc per directed link)
    <table>.parquet   tables an algorithm adds (e.g. ``requests.parquet``: one row
                      per inference request)

Writing is atomic: files go to a temporary directory beside the target,
which is then renamed into place (or, when the target exists, each file is
renamed over the old one, ``summary.json`` last). An interrupted write leaves
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

from netsim.errors import InputError, first_line
from netsim.outputs import check_writable, umask_mode
from netsim.traces import FailureEvent, format_trace, read_trace

FILES = ("metrics.parquet", "failures.csv", "topology.graphml", "summary.json")


@dataclass
class Result:
    """What a run produced; ``metrics`` is a long-format DataFrame, ``tables``
    the algorithm's own tables by name (each written as ``<name>.parquet``)."""

    summary: dict[str, Any]
    metrics: pd.DataFrame
    failures: list[FailureEvent]
    graph: nx.DiGraph
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

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

    def write(self, out: str | Path, force: bool = False) -> Path:
        """Write the output directory atomically; returns its path. An
        existing run there is replaced only with ``force``."""
        return write_run(self, Path(out), force)


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


def load_run(path: str | Path) -> Result:
    """A run read back from its output directory."""
    run = Path(path)
    metrics, summary = read_run_files(run)
    failures = read_trace(run / "failures.csv")
    try:
        graph = nx.read_graphml(run / "topology.graphml", node_type=int)
    except Exception as e:
        raise InputError(f"{run / 'topology.graphml'}: unreadable ({first_line(e)})") from None
    tables = {}
    for path in sorted(run.glob("*.parquet")):
        if path.name == "metrics.parquet":
            continue
        try:
            tables[path.stem] = pd.read_parquet(path)
        except Exception as e:
            raise InputError(f"{path}: not a readable Parquet file ({first_line(e)})") from None
    return Result(summary, metrics, failures, graph, tables)


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
    classes = nx.get_node_attributes(result.graph, "device_class")
    table.insert(0, "device_class", [classes.get(int(k), "") for k in table.index])
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


def write_run(result: Result, out: Path, force: bool = False) -> Path:
    check_output_dir(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        tmp.chmod(umask_mode())  # mkdtemp makes it private
        result.metrics.to_parquet(tmp / "metrics.parquet", index=False)
        for name, table in result.tables.items():
            table.to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / "failures.csv").write_text(format_trace(result.failures), encoding="utf-8")
        nx.write_graphml(result.graph, tmp / "topology.graphml")
        summary = json.dumps(_json_safe(result.summary), indent=2, allow_nan=False)
        (tmp / "summary.json").write_text(summary + "\n", encoding="utf-8")
        if not out.exists():
            os.rename(tmp, out)
        else:
            tables = [f"{name}.parquet" for name in result.tables]
            for stale in out.glob("*.parquet"):  # an old run's tables this run lacks
                if stale.name not in (*FILES, *tables):
                    stale.unlink()
            for name in [*tables, *FILES]:  # summary.json last: it marks a complete run
                os.replace(tmp / name, out / name)
            tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
