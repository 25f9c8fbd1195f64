"""The result of a run and its output directory.

::

    summary.json      scenario, params, seed, backend, sim_time, wall_time_s, events,
                      messages {sent, delivered, dropped, in_flight}, bytes_sent,
                      energy_J, final {metric: value} (+ final_notes: how)
    metrics.parquet   long format: time, step, node (-1 = network), metric, value
    failures.csv      the failures that happened (netsim trace v1: replayable)
    topology.graphml  the graph as simulated (one arc per directed link)

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import pandas as pd

from netsim.errors import InputError
from netsim.traces import FailureEvent, format_trace

FILES = ("metrics.parquet", "failures.csv", "topology.graphml", "summary.json")


@dataclass
class Result:
    """What a run produced; ``metrics`` is a long-format DataFrame."""

    summary: dict[str, Any]
    metrics: pd.DataFrame
    failures: list[FailureEvent]
    graph: nx.DiGraph

    @property
    def final(self) -> dict[str, float]:
        return dict(self.summary["final"])

    def series(self, metric: str, node: int = -1) -> pd.DataFrame:
        """Rows of ``metric`` for ``node`` (default: network-wide), by step."""
        m = self.metrics
        rows = m[(m["metric"] == metric) & (m["node"] == node)]
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

    def write(self, out: str | Path) -> Path:
        """Write the output directory atomically; returns its path."""
        return write_run(self, Path(out))


def check_output_dir(out: Path) -> None:
    """Refuse an output path that is a file, or a non-empty directory that is
    not a netsim run (before anything runs)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / "summary.json").exists():
        raise InputError(
            f"--out {out}: directory is not empty and holds no netsim run; choose another"
        )


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


def write_run(result: Result, out: Path) -> Path:
    check_output_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        result.metrics.to_parquet(tmp / "metrics.parquet", index=False)
        (tmp / "failures.csv").write_text(format_trace(result.failures), encoding="utf-8")
        nx.write_graphml(result.graph, tmp / "topology.graphml")
        summary = json.dumps(_json_safe(result.summary), indent=2, allow_nan=False)
        (tmp / "summary.json").write_text(summary + "\n", encoding="utf-8")
        if not out.exists():
            os.rename(tmp, out)
        else:
            for name in FILES:  # summary.json last: it marks a complete run
                os.replace(tmp / name, out / name)
            tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
