"""Figures drawn from results and traces (never from inside a simulation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from netsim.outputs import umask_mode
from netsim.results import read_run_files
from netsim.trace_info import node_periods
from netsim.traces import FailureEvent


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    return plt


def availability_chart(
    events: list[FailureEvent], out: str | Path, end: float | None = None, max_nodes: int = 64
) -> Path:
    """Down periods of (up to ``max_nodes``) nodes, and the fraction of named
    nodes up over time, as a PNG."""
    plt = _pyplot()
    end = max(e.time for e in events) if end is None else end
    periods = node_periods(events, end)
    nodes = sorted(periods)
    shown = nodes[:max_nodes]
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    for row, k in enumerate(shown):
        spans = [(a, b - a) for a, b in periods[k]]
        top.broken_barh(spans, (row - 0.4, 0.8), color="tab:red")
    top.set_yticks(range(len(shown)), [str(k) for k in shown], fontsize=6)
    top.set_ylabel("node (red: down)")
    title = f"{len(nodes)} nodes" + (
        f", first {len(shown)} shown" if len(shown) < len(nodes) else ""
    )
    top.set_title(f"availability: {title}")
    # nodes down over time: +1 at each failure, -1 at each recovery
    starts = np.array([a for k in nodes for a, _ in periods[k]])
    ends = np.array([b for k in nodes for _, b in periods[k]])
    times = np.concatenate([[0.0], starts, ends])
    change = np.concatenate([[0.0], np.ones(len(starts)), -np.ones(len(ends))])
    order = np.argsort(times, kind="stable")
    times, down = times[order], np.cumsum(change[order])
    inside = times < end  # periods still open at the end are closed there: not a recovery
    up = 1 - down[inside] / max(len(nodes), 1)
    bottom.step(np.append(times[inside], end), np.append(up, up[-1]), where="post")
    bottom.set_ylim(0, 1.05)
    bottom.set_ylabel("fraction up")
    bottom.set_xlabel("simulated time (s)")
    bottom.set_xlim(0, end)
    fig.tight_layout()
    out = Path(out)
    _save(fig, out)
    plt.close(fig)
    return out


def _save(fig: Any, out: Path) -> None:
    """Write the PNG through a temporary file and a rename (parents created)."""
    import os
    import tempfile

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".png", dir=out.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120, format="png")
        os.chmod(tmp, 0o666 & umask_mode())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def metric_figure(run_dirs: list[Path], metric: str, out: str | Path) -> Path:
    """The network-wide ``metric`` of several runs against iteration and
    against simulated time, as one PNG (read from their output directories)."""
    from netsim.errors import InputError

    plt = _pyplot()
    fig, (by_step, by_time) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    runs = []
    for run in run_dirs:
        m, summary = read_run_files(run)
        rows = m[(m["metric"] == metric) & (m["node"] == -1)].sort_values("step")
        if rows.empty:
            known = sorted(set(m.loc[m["node"] == -1, "metric"]))
            raise InputError(
                f"{run}: no network-wide metric {metric!r} (it has: {', '.join(known)})"
            )
        runs.append((run, rows, summary))
    # label each run by what sets it apart: the parameters whose values differ
    params = [dict(s.get("params", {}), algorithm=s.get("algorithm")) for _, _, s in runs]
    differ = sorted(k for k in set().union(*params) if len({repr(p.get(k)) for p in params}) > 1)
    for (run, rows, _), p in zip(runs, params, strict=True):
        label = run.name + (": " + ", ".join(f"{k}={p.get(k)}" for k in differ) if differ else "")
        by_step.plot(rows["step"], rows["value"], label=label, linewidth=1)
        by_time.plot(rows["time"], rows["value"], label=label, linewidth=1)
    by_step.set_xlabel("iteration")
    by_time.set_xlabel("simulated time (s)")
    by_step.set_ylabel(metric)
    for ax in (by_step, by_time):
        ax.grid(alpha=0.3)
    by_step.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    _save(fig, out)
    plt.close(fig)
    return out
