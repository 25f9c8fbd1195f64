"""Benchmark: diffusion LMS in netsim against the same math as one vectorized
numpy loop with no network model, measured in the same process.

    python bench/bench_diffusion.py [--nodes 1000] [--dim 50] [--iterations 1000]
                                    [--ray [--repeat 3]]

Prints wall times, the ratio netsim / reference (the issue's target: <= 5),
and netsim's events per second (device steps + messages + failure events).
With ``--ray``, also the Ray backend with 2 hosts (target: <= 3x the
reference), on warm host actors (a first, short Ray run starts them; Ray's
and the actors' start-up are shown apart), ``--repeat`` times, each against
a numpy loop timed just before it (the ratio's best, median and range), with
the share of messages that crossed hosts and Ray's cost per round over
inline; then the same Ray run once over Ray's channels
(``NETSIM_RAY_SOCKETS=0``) and once with ordinary actor calls
(``NETSIM_RAY_GRAPH=0``) instead of the default compiled graph over
sockets. No assertions on time.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

import networkx as nx
import numpy as np
from scipy import sparse

import netsim
from netsim import scenario_file

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "diffusion_lms.py"


def reference_atc(graph: nx.DiGraph, dim: int, iterations: int, seed: int) -> tuple[float, float]:
    """ATC diffusion LMS as one vectorized loop; returns (wall seconds, steady MSD dB)."""
    n = graph.number_of_nodes()
    src, dst, w = zip(*((u, v, d["weight"]) for u, v, d in graph.edges(data=True)), strict=True)
    self_w = np.array([graph.nodes[k]["self_weight"] for k in range(n)])
    # combination as one sparse matrix: rows receivers, columns senders (A^T)
    a_t = sparse.csr_array(
        (np.r_[w, self_w], (np.r_[dst, np.arange(n)], np.r_[src, np.arange(n)])), shape=(n, n)
    )
    mu = np.array([graph.nodes[k]["mu"] for k in range(n)])[:, None]
    v_std = np.sqrt([graph.nodes[k]["noise_var"] for k in range(n)])
    rng = np.random.default_rng(seed)
    target = rng.standard_normal(dim) / math.sqrt(dim)
    est = np.zeros((n, dim))
    window = max(1, math.ceil(0.25 * iterations))
    msd_sum = 0.0
    start = time.perf_counter()
    for i in range(iterations):
        u = rng.standard_normal((n, dim))
        d = u @ target + v_std * rng.standard_normal(n)
        psi = est + mu * (d - np.sum(u * est, axis=1))[:, None] * u
        est = a_t @ psi
        if i >= iterations - window:
            msd_sum += float(np.mean(np.sum((est - target) ** 2, axis=1)))
    wall = time.perf_counter() - start
    return wall, 10 * math.log10(msd_sum / window)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--ray", action="store_true", help="also run the Ray backend, 2 hosts")
    parser.add_argument("--repeat", type=int, default=3, help="Ray runs, each against its own loop")
    args = parser.parse_args()
    params = {"nodes": args.nodes, "dim": args.dim, "iterations": args.iterations}
    scenario = scenario_file.load(SCENARIO).build(params)  # erdos_renyi, average degree 6

    start = time.perf_counter()
    result = netsim.run(scenario)
    inline_wall = time.perf_counter() - start
    ref_wall, ref_msd = reference_atc(result.graph, args.dim, args.iterations, seed=1)

    events = result.summary["events"]
    degree = result.summary["links"] / args.nodes
    print(
        f"diffusion LMS (ATC), {args.nodes} nodes (average degree {degree:.2f}), "
        f"dim {args.dim}, {args.iterations} iterations"
    )
    print(f"  reference numpy loop   {ref_wall:8.3f} s   steady MSD {ref_msd:7.2f} dB")
    print(
        f"  netsim inline          {inline_wall:8.3f} s   steady MSD "
        f"{result.final['msd_db']:7.2f} dB   {events / inline_wall:,.0f} events/s"
    )
    print(f"  ratio inline / reference: {inline_wall / ref_wall:.2f}   (target <= 5)")
    if args.ray:
        ray_runs(scenario, params, result, inline_wall, args)


def ray_runs(
    scenario: netsim.Scenario,
    params: dict[str, int],
    result: netsim.Result,
    inline_wall: float,
    args: argparse.Namespace,
) -> None:
    """The Ray backend, 2 hosts, ``args.repeat`` times, each against a numpy
    loop timed just before it; then once over Ray's channels and once with
    ordinary actor calls."""
    import ray

    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - start
    start = time.perf_counter()
    warm_up = scenario_file.load(SCENARIO).build(params | {"iterations": 2})
    netsim.run(warm_up, backend="ray", hosts=2)
    actors_start = time.perf_counter() - start
    ratios, walls = [], []
    for _ in range(args.repeat):
        ref_wall, _ = reference_atc(result.graph, args.dim, args.iterations, seed=1)
        start = time.perf_counter()
        ray_result = netsim.run(scenario, backend="ray", hosts=2)
        walls.append(time.perf_counter() - start)
        ratios.append(walls[-1] / ref_wall)
    same = ray_result.metrics.equals(result.metrics)
    s = ray_result.summary
    events = result.summary["events"]
    best = min(walls)
    print(
        f"  netsim ray, 2 hosts    {best:8.3f} s   {events / best:,.0f} events/s"
        f"   (best of {args.repeat}; host transport: {s['host_transport']})"
        f"   (metrics identical to inline: {same}; warm actors: {s['hosts_reused']}; "
        f"starting Ray took {ray_start:.1f} s, its first actors {actors_start:.1f} s more)"
    )
    print(
        f"  messages crossing hosts: {s['messages_cross_hosts']:.1%} "
        f"(placement {s['placement']}; links crossing: {s['links_cross_hosts']:.1%}); "
        f"host calls {s['host_calls']}"
    )
    tax = (best - inline_wall) / args.iterations * 1e3
    print(f"  Ray's cost per round over inline: {tax:.2f} ms")
    print(
        f"  ratio ray / reference, each repeat against the loop timed before it: "
        f"best {min(ratios):.2f}, median {statistics.median(ratios):.2f}, "
        f"from {min(ratios):.2f} to {max(ratios):.2f}   (target <= 3)"
    )
    for label, variable in (
        ("Ray's channels", "NETSIM_RAY_SOCKETS"),
        ("ordinary calls", "NETSIM_RAY_GRAPH"),
    ):
        os.environ[variable] = "0"
        netsim.run(warm_up, backend="ray", hosts=2)  # a first graph over channels takes seconds
        ref_wall, _ = reference_atc(result.graph, args.dim, args.iterations, seed=1)
        start = time.perf_counter()
        other = netsim.run(scenario, backend="ray", hosts=2)
        wall = time.perf_counter() - start
        del os.environ[variable]
        print(
            f"  ray, {label:15s} {wall:8.3f} s   ratio / reference {wall / ref_wall:.2f}"
            f"   (identical: {other.metrics.equals(result.metrics)};"
            f" per round over inline {(wall - inline_wall) / args.iterations * 1e3:.2f} ms)"
        )
    ray.shutdown()


if __name__ == "__main__":
    main()
