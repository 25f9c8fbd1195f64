"""Benchmark: a sweep of short runs on a local Ray instance with 1 CPU and
with 2 CPUs; prints the throughput of each and their ratio. No assertions.

    python bench/bench_sweep.py [--points 16] [--nodes 300] [--iterations 200]

Each Ray instance first runs one small point per CPU, so that its workers
have imported netsim (about 2 s a worker, paid once per worker process, not
per point); the timed sweep then runs on warm workers. Workers format each
point's output files (Parquet, GraphML), the driver only stores them. The
driver's CPU time per point is printed too: it bounds the throughput
whatever the number of CPUs (on a busy machine, a steadier figure than the
ratio).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import ray

from netsim import sweep

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "consensus.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=16)
    parser.add_argument("--nodes", type=int, default=300)
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()
    grid = [f"nodes={args.nodes}", f"iterations={args.iterations}"]
    spec = sweep.build_spec(SCENARIO, grid=grid, seeds=args.points)
    rates = {}
    for cpus in (1, 2):
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        start = time.perf_counter()
        warm = sweep.build_spec(SCENARIO, grid=["nodes=20", "iterations=10"], seeds=cpus)
        sweep.run_sweep(warm, Path(tempfile.mkdtemp()) / "warm")
        warm_wall = time.perf_counter() - start
        out = Path(tempfile.mkdtemp()) / "sweep"
        start, cpu = time.perf_counter(), time.process_time()
        progress = sweep.run_sweep(spec, out)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        ray.shutdown()
        point = pd.read_parquet(out / "sweep.parquet")["wall_time_s"].mean()
        rates[cpus] = progress.done / wall
        print(
            f"{cpus} CPU: {progress.done} points (consensus, {args.nodes} nodes, "
            f"{args.iterations} rounds, {point:.2f} s a run) in {wall:.2f} s = "
            f"{rates[cpus]:.2f} points/s   (warming {cpus} worker(s) took {warm_wall:.1f} s; "
            f"the driver's CPU per point: {cpu / progress.done * 1e3:.0f} ms)"
        )
    print(f"throughput 2 CPUs / 1 CPU: {rates[2] / rates[1]:.2f}   (target >= 1.6)")


if __name__ == "__main__":
    main()
