"""Benchmark: APSM diffusion at 1,000 nodes, dim 100, q = 4, in netsim (inline,
network model on) against the same iteration as one vectorized numpy loop
with no network model, in the same process.

    python bench/bench_apsm.py [--nodes 1000] [--iterations 500]

Prints the wall times and their ratio. No assertions.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import networkx as nx
import numpy as np
from scipy import sparse

import netsim
from algorithms.apsm import apsm_step
from algorithms.regression import target_vector
from netsim import scenario_file

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "sparse_diffusion.py"


def reference(graph: nx.DiGraph, algo: netsim.Scenario, iterations: int) -> tuple[float, float]:
    """The same APSM iteration for all nodes at once; (wall s, final MSD dB)."""
    a = algo.algorithm
    n = graph.number_of_nodes()
    src, dst, w = zip(*((u, v, d["weight"]) for u, v, d in graph.edges(data=True)), strict=True)
    self_w = np.array([graph.nodes[k]["self_weight"] for k in range(n)])
    a_t = sparse.csr_array(
        (np.r_[w, self_w], (np.r_[dst, np.arange(n)], np.r_[src, np.arange(n)])), shape=(n, n)
    )
    v_std = np.sqrt([graph.nodes[k]["noise_var"] for k in range(n)])
    rng = np.random.default_rng(1)
    target = target_vector(algo.seed, a.dim, a.nonzeros)
    est = np.zeros((n, a.dim))
    u_buf, d_buf = np.zeros((n, a.q, a.dim)), np.zeros((n, a.q))
    start = time.perf_counter()
    for i in range(iterations):
        phi = a_t @ est
        u = rng.standard_normal((n, a.dim))
        u_buf[:, i % a.q] = u
        d_buf[:, i % a.q] = u @ target + v_std * rng.standard_normal(n)
        est = apsm_step(phi, u_buf, d_buf, mu=a.mu, eps=a.eps, delta=a.radius, eps_hat=a.eps_hat)
    wall = time.perf_counter() - start
    return wall, 10 * math.log10(float(np.mean(np.sum((est - target) ** 2, axis=1))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--iterations", type=int, default=500)
    args = parser.parse_args()
    scenario = scenario_file.load(SCENARIO).build(
        {"nodes": args.nodes, "q": 4, "iterations": args.iterations}
    )
    start = time.perf_counter()
    result = netsim.run(scenario)
    wall = time.perf_counter() - start
    ref_wall, ref_msd = reference(result.graph, scenario, args.iterations)
    final = result.series("msd_db")["value"].iloc[-1]
    print(
        f"APSM, {args.nodes} nodes, dim 100, q 4, {args.iterations} iterations "
        f"(average degree {result.summary['links'] / args.nodes:.2f})"
    )
    print(f"  reference numpy loop   {ref_wall:8.3f} s   final MSD {ref_msd:7.2f} dB")
    print(
        f"  netsim inline          {wall:8.3f} s   final MSD {final:7.2f} dB   "
        f"{result.summary['events'] / wall:,.0f} events/s"
    )
    print(f"  ratio netsim / reference: {wall / ref_wall:.2f}")


if __name__ == "__main__":
    main()
