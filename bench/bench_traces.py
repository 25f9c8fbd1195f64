"""Benchmark: importing the full LANL trace, and replaying a 1,000-node,
10,000-event trace on a consensus scenario.

    python bench/bench_traces.py [--lanl PATH]

Prints wall times and events per second, and the replay's cost relative to
the same run without failures (measured in the same process). No assertions.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import netsim
from netsim import scenario_file, trace_import
from netsim.traces import FailureEvent, format_trace

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LANL = ROOT.parent / "shared" / "traces" / "lanl_fta_event_trace.tab"
NODES, ITERATIONS, EVENTS = 1000, 200, 10_000


def synthetic_trace(n: int, events: int, end: float, seed: int = 0) -> list[FailureEvent]:
    """Alternating down/up events, ``events`` in all, at uniform times in [0, end)."""
    rng = np.random.default_rng(seed)
    per_node = np.bincount(rng.integers(0, n, events), minlength=n)
    out = []
    for k, m in enumerate(per_node):
        times = np.sort(rng.uniform(0, end, m))
        for i, t in enumerate(times):
            out.append(FailureEvent(float(t), f"node:{k}", "down" if i % 2 == 0 else "up"))
    return sorted(out, key=lambda e: e.time)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lanl", type=Path, default=DEFAULT_LANL)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())

    if args.lanl.exists():
        start = time.perf_counter()
        trace = trace_import.read_fta(args.lanl)
        imported = trace_import.to_events(trace, trace_import.Selection(gap="down"))
        (tmp / "lanl.csv").write_text(imported.text())
        wall = time.perf_counter() - start
        rows = sum(len(iv.start) for iv in trace.values())
        print(
            f"import of the full LANL trace: {rows:,} intervals of {len(trace):,} nodes -> "
            f"{len(imported.events):,} events in {wall:.3f} s ({rows / wall:,.0f} intervals/s)"
        )
    else:
        print(f"(skipping the LANL import: {args.lanl} not found)")

    scenario = scenario_file.load(ROOT / "scenarios" / "consensus.py").build(
        {"nodes": NODES, "iterations": ITERATIONS}
    )
    start = time.perf_counter()
    base = netsim.run(scenario)
    base_wall = time.perf_counter() - start
    end = base.summary["sim_time"]
    path = tmp / "synthetic.csv"
    path.write_text(format_trace(synthetic_trace(NODES, EVENTS, end)))
    start = time.perf_counter()
    replay = netsim.run(scenario, trace=path)
    wall = time.perf_counter() - start
    s = replay.summary
    print(
        f"replay of a {NODES}-node, {EVENTS:,}-event trace on consensus ({ITERATIONS} rounds): "
        f"{wall:.3f} s, {s['events'] / wall:,.0f} events/s ({s['failures']:,} failure events "
        f"applied, {s['messages']['dropped']:,} messages dropped)"
    )
    ratio = wall / base_wall
    print(f"  same run without failures: {base_wall:.3f} s; replay / no failures = {ratio:.2f}")
    if args.lanl.exists():
        lanl = trace_import.to_events(
            trace_import.read_fta(args.lanl),
            trace_import.Selection(nodes=NODES, scale=float(imported.end - imported.start) / end),
        )
        (tmp / "lanl1000.csv").write_text(lanl.text())
        start = time.perf_counter()
        r = netsim.run(scenario, trace=tmp / "lanl1000.csv")
        wall = time.perf_counter() - start
        print(
            f"replay of LANL on {NODES} nodes (whole trace, {len(lanl.events):,} events): "
            f"{wall:.3f} s, {r.summary['events'] / wall:,.0f} events/s"
        )


if __name__ == "__main__":
    main()
