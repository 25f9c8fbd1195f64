"""Benchmark: a sweep of 16 short runs on a local Ray instance with 1 CPU and
with 2 CPUs; prints the throughput of each and their ratio. No assertions.

    python bench/bench_sweep.py [--points 16]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ray

from netsim import sweep

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "consensus.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=16)
    args = parser.parse_args()
    spec = sweep.build_spec(SCENARIO, grid=["nodes=300", "iterations=2000"], seeds=args.points)
    rates = {}
    for cpus in (1, 2):
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        out = Path(tempfile.mkdtemp()) / "sweep"
        start = time.perf_counter()
        progress = sweep.run_sweep(spec, out)
        wall = time.perf_counter() - start
        ray.shutdown()
        rates[cpus] = progress.done / wall
        print(
            f"{cpus} CPU: {progress.done} points (consensus, 300 nodes, 2000 rounds) "
            f"in {wall:.2f} s = {rates[cpus]:.2f} points/s"
        )
    print(f"throughput 2 CPUs / 1 CPU: {rates[2] / rates[1]:.2f}")


if __name__ == "__main__":
    main()
