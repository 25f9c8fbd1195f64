"""Figures drawn from results and traces (never from inside a simulation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from netsim.outputs import atomic_file
from netsim.results import read_run_files
from netsim.trace_info import node_periods
from netsim.traces import FailureEvent


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    return plt


LABELS = 40  # node labels at most on an availability chart


def availability_chart(
    events: list[FailureEvent], out: str | Path, end: float | None = None, max_nodes: int = 64
) -> Path:
    """Down periods of (up to ``max_nodes``) nodes, and the fraction of named
    nodes up over time, as a PNG."""
    plt = pyplot()
    end = max(e.time for e in events) if end is None else end
    periods = node_periods(events, end)
    nodes = sorted(periods)
    shown = nodes[:max_nodes]
    # taller with more nodes, and at most LABELS node labels: readable at hundreds
    height = min(4.0 + 0.06 * len(shown), 40.0)
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, height + 1.5), sharex=True, gridspec_kw={"height_ratios": [height, 1.5]}
    )
    for row, k in enumerate(shown):
        spans = [(a, b - a) for a, b in periods[k]]
        top.broken_barh(spans, (row - 0.4, 0.8), color="tab:red")
    every = max(1, -(-len(shown) // LABELS))
    ticks = list(range(0, len(shown), every))
    top.set_yticks(ticks, [str(shown[i]) for i in ticks], fontsize=7)
    top.set_ylim(len(shown) - 0.5, -0.5)
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
    save_png(fig, out)
    plt.close(fig)
    return out


def save_png(fig: Any, out: Path) -> None:
    """Write the PNG through a temporary file and a rename (parents created)."""
    with atomic_file(out, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")


def run_dirs_of(paths: list[Path]) -> list[Path]:
    """Run directories, with a sweep directory standing for its done points."""
    from netsim.sweep import SPEC_FILE, load_sweep

    out = []
    for path in paths:
        if (path / SPEC_FILE).is_file():
            table = load_sweep(path).table
            out += [path / d for d in table.loc[table["status"] == "done", "run_dir"]]
        else:
            out.append(path)
    return out


def metric_figure(
    paths: list[Path],
    metric: str,
    out: str | Path,
    *,
    node: int = -1,
    log: bool = False,
    mean: bool = False,
    against: str | None = None,
) -> Path:
    """``metric`` (network-wide, or of ``node``) of several runs (or sweeps'
    points) as one PNG: against iteration and simulated time, each run a line
    or, with ``mean``, the mean and a ±1 standard deviation band over runs
    that differ only in their seed; or, ``against`` a parameter, the metric's
    last value against that parameter's values (mean ± std over seeds)."""
    from netsim.errors import InputError

    runs = []
    for run in run_dirs_of(paths):
        m, summary = read_run_files(run)
        rows = m[(m["metric"] == metric) & (m["node"] == node)].sort_values("step")
        if rows.empty:
            known = sorted(set(m.loc[m["node"] == node, "metric"]))
            where = "network-wide metric" if node == -1 else f"metric of node {node}"
            raise InputError(f"{run}: no {where} {metric!r} (it has: {', '.join(known)})")
        runs.append(
            (run, rows, dict(summary.get("params", {}), algorithm=summary.get("algorithm")))
        )
    if not runs:
        raise InputError("no run to plot (the sweep has no point done)")
    params = [p for _, _, p in runs]
    differ = sorted(k for k in set().union(*params) if len({repr(p.get(k)) for p in params}) > 1)
    plt = pyplot()
    ylabel = metric if node == -1 else f"{metric} (node {node})"
    if against is not None:
        if any(against not in p for p in params):
            raise InputError(f"--against {against}: not a parameter of every run")
        fig, ax = plt.subplots(figsize=(7, 4.5))
        _against(ax, runs, against, [k for k in differ if k not in (against, "seed")])
        ax.set_xlabel(against)
        axes = [ax]
    else:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
        if mean:
            _mean_bands(axes, runs, [k for k in differ if k != "seed"], log)
        else:
            for run, rows, p in runs:
                label = run.name + (
                    ": " + ", ".join(f"{k}={p.get(k)}" for k in differ) if differ else ""
                )
                axes[0].plot(rows["step"], rows["value"], label=label, linewidth=1)
                axes[1].plot(rows["time"], rows["value"], label=label, linewidth=1)
        axes[0].set_xlabel("iteration")
        axes[1].set_xlabel("simulated time (s)")
    axes[0].set_ylabel(ylabel)
    for ax in axes:
        ax.grid(alpha=0.3)
        if log:
            ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    save_png(fig, out)
    plt.close(fig)
    return out


def _groups(runs: list[Any], keys: list[str]) -> dict[str, list[Any]]:
    """Runs grouped by their values of ``keys`` (a label per group)."""
    groups: dict[str, list[Any]] = {}
    for run in runs:
        label = ", ".join(f"{k}={run[2].get(k)}" for k in keys) or "all runs"
        groups.setdefault(label, []).append(run)
    return groups


def _mean_bands(axes: Any, runs: list[Any], keys: list[str], log: bool) -> None:
    """Mean ± std per group; on a log axis, of log10 values (a geometric mean
    and a band of one standard deviation in decades)."""
    for label, group in _groups(runs, keys).items():
        steps, t, mu, low, high = band([rows for _, rows, _ in group], log)
        kind = "geometric mean" if log else "mean"
        name = f"{label} ({kind} ± std of {len(group)})"
        for ax, x in ((axes[0], steps), (axes[1], t)):
            (line,) = ax.plot(x, mu, label=name, linewidth=1.2)
            ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2)


def band(series: list[Any], log: bool = False) -> tuple[np.ndarray, ...]:
    """Over the steps every run has: the steps, mean time, and the mean and
    ±1 std band of the values (of log10 values on a log axis, taken back)."""
    import pandas as pd

    values = pd.concat([rows.set_index("step")["value"] for rows in series], axis=1).dropna()
    times = pd.concat([rows.set_index("step")["time"] for rows in series], axis=1)
    t = times.loc[values.index].mean(axis=1)
    if log:
        values = np.log10(values.where(values > 0))
    mu, sd = values.mean(axis=1), values.std(axis=1).fillna(0.0)
    low, high = mu - sd, mu + sd
    if log:
        mu, low, high = 10**mu, 10**low, 10**high
    return tuple(np.asarray(a, dtype=float) for a in (values.index, t, mu, low, high))


def _against(ax: Any, runs: list[Any], against: str, keys: list[str]) -> None:
    import pandas as pd

    for label, group in _groups(runs, keys).items():
        last = pd.DataFrame(
            {
                "x": [p[against] for _, _, p in group],
                "y": [r["value"].iloc[-1] for _, r, _ in group],
            }
        )
        stats = last.groupby("x")["y"].agg(["mean", "std", "size"]).sort_index()
        ax.errorbar(
            stats.index,
            stats["mean"],
            yerr=stats["std"].fillna(0.0),
            marker="o",
            capsize=3,
            label=f"{label} (last value; mean ± std over {int(stats['size'].max())})",
        )
