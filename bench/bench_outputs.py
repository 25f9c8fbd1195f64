"""Benchmark: what writing a run's outputs costs at scale, against the run.

    python bench/bench_outputs.py [--nodes 100000] [--iterations 50] [--topology torus]

Runs consensus in this process, then writes its output directory three ways:
as netsim does by default (the Parquet node and link tables, GraphML only up
to ``GRAPHML_MAX_LINKS`` directed links), with ``graphml=True`` (the tables
and ``topology.graphml``) and the GraphML alone (``nx.write_graphml`` of
``result.graph``, as netsim wrote before the tables). Prints each time and
the share of run + write spent writing (the issue's target at 100,000 nodes:
at most 10%). No assertions on time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import networkx as nx

import netsim
from netsim import outputs, scenario_file

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "consensus.py"


def timed(f, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = f(*args, **kwargs)
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--topology", default="torus")
    args = parser.parse_args()
    params = {"nodes": args.nodes, "topology": args.topology, "iterations": args.iterations}
    scenario = scenario_file.load(SCENARIO).build(params)
    result, run_s = timed(netsim.run, scenario)
    links = len(result.links)
    print(f"{args.nodes:,} nodes, {links:,} directed links, {args.iterations} iterations")
    print(f"netsim.run (with the node and link tables): {run_s:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        _, default_s = timed(result.write, Path(tmp) / "default")
        graph, graph_s = timed(lambda: result.graph)
        _, graphml_s = timed(nx.write_graphml, graph, Path(tmp) / "alone.graphml")
        _, both_s = timed(result.write, Path(tmp) / "both", graphml=True)
    default = "with GraphML" if links <= outputs.GRAPHML_MAX_LINKS else "no GraphML"
    print(f"write, default ({default}): {default_s:.2f} s")
    print(f"result.graph from the tables: {graph_s:.2f} s")
    print(f"nx.write_graphml alone: {graphml_s:.2f} s")
    print(f"write with graphml=True (graph built): {both_s:.2f} s")
    print(f"share of run + write spent writing, default: {default_s / (run_s + default_s):.1%}")
    before = graph_s + graphml_s
    print(f"  with GraphML as before (graph + GraphML): {before / (run_s + before):.1%}")


if __name__ == "__main__":
    main()
