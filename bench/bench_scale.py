"""Benchmark: consensus and diffusion LMS at 10k, 100k and (optionally) 1M nodes.

    python bench/bench_scale.py [--nodes 10000 100000] [--million]
                                [--algorithms consensus diffusion]
                                [--topology erdos_renyi] [--profile DIR]

Each point runs in a process of its own (so ``ru_maxrss`` is that run's peak):
it builds the graph (``erdos_renyi``, average degree 6, ``connect="bridge"``:
one draw plus the fewest edges that connect it; ``torus`` and
``random_geometric`` work too), runs the algorithm inline, and writes the
output directory as ``netsim run`` does. Consensus runs 50 synchronous
iterations (``dim`` 1); diffusion LMS 64 iterations (``dim`` 10: one chunk of
the devices' data streams). Prints per point the wall time of the whole run
(build, run, write), the time per node-iteration,
the peak memory above the imports' per node (and the process's whole
peak), the share of the run spent writing outputs, and the ratio of per-node-iteration
costs between consecutive sizes (1.0: linear). ``--profile DIR`` writes a
cProfile of each point. No assertions.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import cProfile, json, resource, sys, tempfile, time
from pathlib import Path
import netsim, topologies
from algorithms import AverageConsensus, DiffusionLMS, assign_node_parameters
from netsim import rng
algorithm, nodes, topology, profile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
profiler = cProfile.Profile() if profile else None
if profiler:
    profiler.enable()
start = time.perf_counter()
options = {"connect": "bridge"} if topology in ("erdos_renyi", "random_geometric") else {}
graph = topologies.build(topology, nodes, seed=rng.int_seed(0, "topology"), **options)
topologies.assign_devices(graph, "homogeneous", seed=0)
topologies.assign_links(graph, latency_s=0.005, seed=0)
if algorithm == "consensus":
    iterations, algo = 50, AverageConsensus(iterations=50)
else:
    assign_node_parameters(graph, mu=0.01, noise_var=0.01, seed=0)
    iterations, algo = 64, DiffusionLMS(dim=10, iterations=64)
scenario = netsim.Scenario(name=algorithm, graph=graph, algorithm=algo, seed=0)
built = time.perf_counter()
result = netsim.run(scenario)
ran = time.perf_counter()
with tempfile.TemporaryDirectory() as tmp:
    result.write(Path(tmp) / "run")
written = time.perf_counter()
if profiler:
    profiler.disable()
    profiler.dump_stats(profile)
print(json.dumps({
    "nodes": graph.number_of_nodes(), "edges": graph.number_of_edges(),
    "iterations": iterations, "build_s": built - start, "run_s": ran - built,
    "write_s": written - ran, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "base_kb": base, "final": result.summary["final"],
}))
"""


def point(algorithm: str, nodes: int, topology: str, profile: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, algorithm, str(nodes), topology, profile],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise SystemExit(f"{algorithm} at {nodes:,} nodes failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--million", action="store_true", help="add 1,000,000 nodes (minutes)")
    parser.add_argument("--algorithms", nargs="+", default=["consensus", "diffusion"])
    parser.add_argument("--topology", default="erdos_renyi")
    parser.add_argument("--profile", type=Path, help="write a cProfile of each point here")
    args = parser.parse_args()
    sizes = sorted(set(args.nodes + ([1_000_000] if args.million else [])))
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    print(
        f"{'algorithm':<10} {'nodes':>9} {'edges':>9} {'build s':>8} {'run s':>8} "
        f"{'write s':>8} {'total s':>8} {'us/node-it':>10} {'peak MB':>8} {'KB/node':>8} "
        f"{'write %':>8}"
    )
    for algorithm in args.algorithms:
        previous = None
        for nodes in sizes:
            profile = str(args.profile / f"{algorithm}-{nodes}.prof") if args.profile else ""
            p = point(algorithm, nodes, args.topology, profile)
            total = p["build_s"] + p["run_s"] + p["write_s"]
            per = total / (p["nodes"] * p["iterations"]) * 1e6
            kb = (p["peak_kb"] - p["base_kb"]) / p["nodes"]
            print(
                f"{algorithm:<10} {p['nodes']:>9,} {p['edges']:>9,} {p['build_s']:>8.2f} "
                f"{p['run_s']:>8.2f} {p['write_s']:>8.2f} {total:>8.2f} {per:>10.3f} "
                f"{p['peak_kb'] / 1024:>8.0f} {kb:>8.2f} {p['write_s'] / total:>8.1%}",
                flush=True,
            )
            if previous is not None:
                size_ratio = p["nodes"] / previous[0]
                print(
                    f"{'':<10} per-node-iteration cost x{per / previous[1]:.2f} for "
                    f"x{size_ratio:.0f} nodes (1.00 = linear); memory per node "
                    f"x{kb / previous[2]:.2f}",
                    flush=True,
                )
            previous = (p["nodes"], per, kb)


if __name__ == "__main__":
    main()
