"""Benchmark: FedAvg, 100 clients, 10% participation, MLP on digits, 20
rounds, inline and on Ray with 1 and 2 hosts: wall times, and the speedup
of 2 Ray hosts over 1. No assertions.

    python bench/bench_fedavg.py [--model mlp|cnn] [--local-epochs 5]

One-time costs (importing torch and scikit-learn, the first FLOP count) are
paid by a warm-up run before timing; Ray's start-up is not timed either.
With the MLP a round trains ten clients on about 14 examples each: too little
work for a second host to pay for its messages. ``--model cnn
--local-epochs 20`` is a heavier variant.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import ray

import netsim
from netsim import scenario_file

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "fedavg.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--local-epochs", type=int, default=5)
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    args = parser.parse_args()
    file = scenario_file.load(SCENARIO)
    netsim.run(file.build({"clients": 4, "rounds": 1, "model": args.model}))  # warm-up
    params = {"clients": 100, "participation": 0.1, "rounds": 20, "model": args.model}
    scenario = file.build(params | {"local_epochs": args.local_epochs})
    walls, results = {}, {}
    start = time.perf_counter()
    results["inline"] = netsim.run(scenario)
    walls["inline"] = time.perf_counter() - start
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    netsim.run(file.build({"clients": 4, "rounds": 1, "model": args.model}), backend="ray", hosts=2)
    for hosts in (1, 2):
        start = time.perf_counter()
        results[f"ray, {hosts} host(s)"] = netsim.run(scenario, backend="ray", hosts=hosts)
        walls[f"ray, {hosts} host(s)"] = time.perf_counter() - start
    ray.shutdown()
    print(
        f"FedAvg, 100 clients, 10% participation, {args.model.upper()} on digits, "
        f"{args.local_epochs} local epochs, 20 rounds"
    )
    base = results["inline"]
    for name, wall in walls.items():
        r = results[name]
        same = r.metrics.equals(base.metrics)
        print(
            f"  {name:16s} {wall:7.2f} s   accuracy {r.final['accuracy']:.4f}   "
            f"simulated {r.summary['sim_time']:.3f} s   identical to inline: {same}"
        )
    print(
        f"  speedup of 2 Ray hosts over 1: {walls['ray, 1 host(s)'] / walls['ray, 2 host(s)']:.2f}"
    )


if __name__ == "__main__":
    main()
