"""One self-contained HTML page for a run or a sweep, to read or send: no
file beside it, no network (figures are PNGs inside the page).

A run's page: the summary, the key curves (every network-wide metric recorded
over steps), the topology drawn with its device classes, the failure
timeline, the per-device and per-class tables, and the provenance. A sweep's
page: its table, and each final metric against each parameter that varies
(mean ± std over seeds).

On load, the page counts its figures the browser decoded into
``<body data-figures-loaded=...>`` (the headless-browser test reads it).
"""

from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from netsim.errors import InputError
from netsim.outputs import write_atomic
from netsim.plots import availability_chart, metric_figure, pyplot, save_png
from netsim.results import class_table, device_table, load_run
from netsim.summary_table import summary_rows

MAX_CURVES = 8  # network-wide metrics drawn, at most
MAX_DRAWN_NODES = 2000  # a larger topology is described, not drawn

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: right; }
th { background: #f4f4f4; } td.label { text-align: left; font-weight: 600; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.note { color: #666; font-size: 0.9em; }
"""
SCRIPT = """
window.addEventListener("load", () => {
  const ok = [...document.images].filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.figuresLoaded = ok;
});
"""


def _png(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _page(title: str, sections: list[tuple[str, str]]) -> str:
    body = "".join(f"<h2>{html.escape(h)}</h2>\n{content}\n" for h, content in sections)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>"
        f"<script>{SCRIPT}</script></head>\n<body>\n<h1>{html.escape(title)}</h1>\n{body}"
        "</body></html>\n"
    )


def _rows_table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(
        f"<tr><td class='label'>{html.escape(k)}</td><td style='text-align:left'>"
        f"{html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    return f"<table>{cells}</table>"


def _frame(table: pd.DataFrame) -> str:
    return table.to_html(float_format=lambda v: f"{v:.4g}", border=0, na_rep="")


def _topology_figure(graph: Any, out: Path) -> Path:
    import networkx as nx

    plt = pyplot()
    g = nx.Graph(graph)  # the run's graph has one arc per direction
    classes = nx.get_node_attributes(g, "device_class")
    names = sorted(set(classes.values())) or [""]
    colors = plt.get_cmap("tab10")
    pos = nx.spring_layout(g, seed=0)
    fig, ax = plt.subplots(figsize=(7, 6))
    nx.draw_networkx_edges(g, pos, ax=ax, alpha=0.3, width=0.6)
    for i, name in enumerate(names):
        nodes = [k for k in g.nodes if classes.get(k, "") == name]
        nx.draw_networkx_nodes(
            g,
            pos,
            nodelist=nodes,
            ax=ax,
            node_size=40,
            node_color=[colors(i % 10)],
            label=name or "nodes",
        )
    ax.legend(title="device class", fontsize=8)
    ax.set_axis_off()
    fig.tight_layout()
    save_png(fig, out)
    plt.close(fig)
    return out


def _curves(run_dir: Path, metrics: pd.DataFrame, where: Path) -> list[str]:
    network = metrics[metrics["node"] == -1]
    counts = network.groupby("metric")["step"].nunique()
    names = [m for m in counts.index if counts[m] > 1][:MAX_CURVES]
    out = []
    for name in names:
        values = network.loc[network["metric"] == name, "value"]
        positive = bool((values > 0).all())
        wide = positive and values.max() / max(values.min(), 1e-300) > 1e3
        png = metric_figure([run_dir], name, where / f"{name}.png", log=wide)
        out.append(_png(png))
    return out


def run_report(run_dir: Path, out: Path) -> Path:
    """The page of the run in ``run_dir``, written to ``out``."""
    run_dir = Path(run_dir)
    result = load_run(run_dir)
    summary = result.summary
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        curves = _curves(run_dir, result.metrics, where) or [
            "<p class='note'>no metric recorded over steps</p>"
        ]
        if len(result.nodes) <= MAX_DRAWN_NODES:
            topology = _png(_topology_figure(result.graph, where / "topology.png"))
        else:
            topology = (
                f"<p class='note'>{len(result.nodes):,} nodes: too many to draw; "
                "see the tables below</p>"
            )
        if result.failures:
            end = float(summary["sim_time"]) or max(e.time for e in result.failures)
            timeline = _png(availability_chart(result.failures, where / "failures.png", end=end))
        else:
            timeline = "<p class='note'>no failure happened</p>"
        provenance = summary.get("provenance", {})
        sections = [
            ("Summary", _rows_table([*summary_rows(summary), ("output", str(run_dir))])),
            ("Key curves", "\n".join(curves)),
            ("Topology and device classes", topology),
            ("Failure timeline", timeline),
            ("Devices by class", _frame(class_table(result))),
            ("Per device", _frame(device_table(result))),
            ("Parameters", _rows_table(sorted((k, v) for k, v in summary["params"].items()))),
            ("Provenance", _rows_table([(k, v) for k, v in provenance.items()])),
        ]
        page = _page(f"netsim run: {summary['scenario']} ({summary['algorithm']})", sections)
    write_atomic(out, page)
    return out


def _final_against(
    table: pd.DataFrame, param: str, column: str, others: list[str], out: Path
) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    groups = table.groupby(others, dropna=False) if others else [("all points", table)]
    for key, group in groups:
        stats = group.groupby(param)[column].agg(["mean", "std"]).sort_index()
        label = (
            key
            if isinstance(key, str)
            else ", ".join(
                f"{o}={v}"
                for o, v in zip(others, key if isinstance(key, tuple) else (key,), strict=True)
            )
        )
        ax.errorbar(
            stats.index,
            stats["mean"],
            yerr=stats["std"].fillna(0.0),
            marker="o",
            capsize=3,
            label=label,
        )
    ax.set_xlabel(param)
    ax.set_ylabel(column.removeprefix("final_") + " (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, out)
    plt.close(fig)
    return out


def sweep_report(sweep_dir: Path, out: Path) -> Path:
    """The page of the sweep in ``sweep_dir``, written to ``out``."""
    from netsim.sweep import load_sweep

    sweep = load_sweep(sweep_dir)
    table = sweep.table
    params = sorted({k for p in sweep.spec.points for k in p})
    varying = [p for p in params if p != "seed" and table[p].astype(str).nunique() > 1]
    done = table[table["status"] == "done"]
    finals = [c for c in table.columns if c.startswith("final_")]
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for param in varying:
            if not pd.api.types.is_numeric_dtype(done[param]):
                continue
            others = [p for p in varying if p != param]
            for column in finals:
                if done[column].notna().any():
                    png = Path(tmp) / f"{column}-{param}.png"
                    figures.append(_png(_final_against(done, param, column, others, png)))
        counts = table["status"].value_counts().to_dict()
        rows = [
            ("scenario", sweep.spec.scenario),
            ("points", f"{len(table)} ({', '.join(f'{v} {k}' for k, v in counts.items())})"),
            ("axes", str(sweep.spec.axes)),
        ]
        shown = table.drop(columns=[c for c in ("run_dir", "ray_node") if c in table.columns])
        sections = [
            ("Sweep", _rows_table(rows)),
            (
                "Final metrics against parameters",
                "\n".join(figures) or "<p class='note'>no numeric parameter varies</p>",
            ),
            ("Points", _frame(shown)),
            ("Provenance", _rows_table(list(sweep.spec.provenance.items()))),
        ]
        page = _page(f"netsim sweep: {Path(sweep.spec.scenario).name}", sections)
    write_atomic(out, page)
    return out


def report(path: Path, out: Path) -> Path:
    """A run's or a sweep's page, whichever ``path`` holds."""
    from netsim.sweep import SPEC_FILE

    if (Path(path) / SPEC_FILE).is_file():
        return sweep_report(path, out)
    if (Path(path) / "summary.json").is_file():
        return run_report(path, out)
    raise InputError(f"{path}: neither a run nor a sweep directory")
