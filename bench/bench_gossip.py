"""Benchmark: asynchronous (randomized) gossip against a bare SimPy loop.

    python bench/bench_gossip.py [--nodes 100000] [--iterations 1] [--topology torus] [--exchange]

Runs ``scenarios/consensus.py`` with ``algorithm=gossip`` (every node's
Poisson clock ticks once a second on average; one iteration is one second)
inline, with the default (windowed) protocol, and with ``--exchange`` the
per-exchange one too (one SimPy process an exchange: the same results, which
are checked), and counts the clock ticks it simulated (each tick of a node starts
one exchange: ask, answer, apply; the count is replayed from the clocks'
own streams). The reference, in the same process, is the least any
event-driven simulator pays for that many ticks: a bare SimPy environment
with one process per node doing ``yield env.timeout(exponential draw)``
exactly as many times as that node ticked (draws made beforehand, vectorized).

Prints both rates in ticks (node-updates started) per second of wall time and
netsim's rate as a share of the bare loop's. No assertions.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
import simpy

import netsim
from netsim import rng, scenario_file

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "consensus.py"


def ticks_per_node(degrees: np.ndarray, seed: int, rate: float, end: float) -> np.ndarray:
    """How many times each node's gossip clock ticks by ``end``: its stream
    replayed as ``RandomizedGossip`` draws it (a delay, then a neighbour)."""
    ticks = np.zeros(len(degrees), dtype=np.int64)
    for k, degree in enumerate(degrees.tolist()):
        g = rng.generator(seed, "gossip-clock", k)
        t = g.exponential(1.0 / rate)
        while t <= end:
            ticks[k] += 1
            g.integers(degree)
            t += g.exponential(1.0 / rate)
    return ticks


def bare_simpy(ticks: np.ndarray, rate: float) -> float:
    """Wall time of one SimPy process per node doing its ticks as timeouts."""
    delays = np.random.default_rng(0).exponential(1.0 / rate, int(ticks.sum()))
    bounds = np.concatenate([[0], np.cumsum(ticks)])

    def clock(env: simpy.Environment, mine: list[float]) -> Generator[Any, Any, None]:
        for delay in mine:
            yield env.timeout(delay)

    start = time.perf_counter()
    env = simpy.Environment()
    for k in range(len(ticks)):
        env.process(clock(env, delays[bounds[k] : bounds[k + 1]].tolist()))
    env.run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--topology", default="torus")
    parser.add_argument("--exchange", action="store_true", help="also run window=False")
    args = parser.parse_args()
    params = {
        "nodes": args.nodes,
        "topology": args.topology,
        "iterations": args.iterations,
        "algorithm": "gossip",
    }
    scenario = scenario_file.load(SCENARIO).build(params)
    rate, seed = scenario.algorithm.rate, scenario.seed
    start = time.perf_counter()
    result = netsim.run(scenario)
    netsim_s = time.perf_counter() - start
    degrees = np.bincount(result.links["dst"].to_numpy(), minlength=args.nodes)
    ticks = ticks_per_node(degrees, seed, rate, args.iterations / rate)
    bare_s = bare_simpy(ticks, rate)
    total = int(ticks.sum())
    print(
        f"{args.nodes:,} nodes ({args.topology}), {args.iterations} iteration(s): "
        f"{total:,} clock ticks, {result.summary['messages']['sent']:,} messages"
    )
    print(f"bare SimPy loop: {bare_s:8.2f} s  {total / bare_s:>12,.0f} ticks/s")
    print(f"netsim gossip:   {netsim_s:8.2f} s  {total / netsim_s:>12,.0f} ticks/s (whole run)")
    print(f"netsim / bare: {bare_s / netsim_s:.1%} (goal: at least 50%)")
    if args.exchange:
        algorithm = dataclasses.replace(scenario.algorithm, window=False)
        start = time.perf_counter()
        exchange = netsim.run(dataclasses.replace(scenario, algorithm=algorithm))
        exchange_s = time.perf_counter() - start
        same = exchange.metrics.equals(result.metrics) and (
            exchange.summary["messages"] == result.summary["messages"]
        )
        print(f"per exchange:    {exchange_s:8.2f} s  {total / exchange_s:>12,.0f} ticks/s (whole)")
        print(f"per exchange / bare: {bare_s / exchange_s:.1%}; same results: {same}")


if __name__ == "__main__":
    main()
