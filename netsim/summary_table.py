"""A run's summary as rows of text: the table `netsim run` and `netsim show`
print, and the report's summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def summary_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, text) rows describing a run's ``summary.json``."""
    m = summary["messages"]
    rows = [
        ("scenario", f"{summary['scenario']} ({summary['algorithm']}), seed {summary['seed']}"),
        ("backend", _backend(summary)),
        ("network", f"{summary['nodes']} nodes, {summary['links']} directed links"),
        ("simulated time", f"{summary['sim_time']:.6g} s"),
        ("wall time", f"{summary['wall_time_s']:.3g} s"),
        ("events", f"{summary['events']:,}"),
        (
            "messages",
            f"sent {m['sent']:,}  delivered {m['delivered']:,}  "
            f"dropped {m['dropped']:,}  in flight {m['in_flight']:,}",
        ),
        ("bytes sent", _bytes(summary["bytes_sent"])),
        ("energy", _energy(summary)),
        ("failures", f"{summary['failures']:,} events"),
    ]
    if summary.get("batteries_exhausted"):
        rows.append(("batteries", f"{summary['batteries_exhausted']} ran out (see failures.csv)"))
    if summary.get("trace"):
        named, n = summary["trace_nodes"], summary["nodes"]
        others = f" (the other {n - named} never fail)" if named < n else ""
        rows.append(("trace", f"{summary['trace']}: names {named} of {n} nodes{others}"))
    for name, value in summary["final"].items():
        note = summary.get("final_notes", {}).get(name, "")
        shown = "n/a" if value is None else f"{value:.6g}"  # null in summary.json: NaN
        rows.append((f"final {name}", shown + (f"   ({note})" if note else "")))
    return rows


def format_summary(summary: dict[str, Any], out: Path) -> str:
    """The table printed at the end of ``netsim run`` (and by ``netsim show``)."""
    rows = [*summary_rows(summary), ("output", str(out))]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _backend(summary: dict[str, Any]) -> str:
    text = f"{summary['backend']}, {summary['hosts']} host(s)"
    if summary.get("hosts_chosen"):
        text += f" ({summary['hosts_chosen']})"
    nodes = summary.get("cluster_nodes") or {}
    if len(nodes) > 1:
        text += " on " + ", ".join(f"{count} on node {n[:8]}" for n, count in nodes.items())
    return text


def _energy(summary: dict[str, Any]) -> str:
    causes = summary.get("energy_by_cause_J", {})
    names = {"compute": "compute", "tx": "transmit", "rx": "receive", "idle": "idle"}
    parts = ", ".join(f"{names[k]} {v:.3g}" for k, v in causes.items() if k in names)
    return f"{summary['energy_J']:.6g} J" + (f" ({parts})" if parts else "")


def _bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.4g} {unit}"
        n /= 1000
    return f"{n:.4g} GB"
