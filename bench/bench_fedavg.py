"""Benchmark: FedAvg on the reference workload (digits, 100 IID clients, 10%
per round, MLP 64-32-10, 10 local epochs of SGD lr 0.1 batch 16, 20 rounds),
inline and on Ray with 1 and 2 hosts: wall times, the ratio of Ray with 1
host to inline (the issue's target: <= 1.5; the best of each, and the ratio
in each repeat, median and range), the host calls and the compiled graph's
executions, and the speedup of 2 Ray hosts over 1. No assertions.

    python bench/bench_fedavg.py [--model mlp|cnn] [--local-epochs 10] [--repeat 2]

One-time costs (importing torch and scikit-learn, the first FLOP count) are
paid by a warm-up run before timing, inline and on Ray: Ray's start-up is
not timed, and the timed Ray runs borrow warm host actors from the process's
pool (``hosts_reused`` in their summary), as every run after the first in a
process does. Each configuration runs ``--repeat`` times; the best is shown.
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
    parser.add_argument("--local-epochs", type=int, default=10)
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    file = scenario_file.load(SCENARIO)
    small = file.build({"clients": 4, "rounds": 1, "model": args.model})
    params = {"clients": 100, "participation": 0.1, "rounds": 20, "model": args.model}
    params |= {"local_epochs": args.local_epochs, "lr": 0.1, "batch_size": 16}
    scenario = file.build(params)
    netsim.run(small)  # warm-up
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    netsim.run(small, backend="ray", hosts=2)  # warm-up: starts the pool's two actors
    configs = {"inline": {}, "ray, 1 host": {"hosts": 1}, "ray, 2 hosts": {"hosts": 2}}
    walls: dict[str, float] = {}
    results = {}
    ratios = []  # ray 1 host / inline, each repeat (run one after the other)
    for _ in range(args.repeat):
        this: dict[str, float] = {}
        for name, kwargs in configs.items():
            backend = "inline" if name == "inline" else "ray"
            start = time.perf_counter()
            results[name] = netsim.run(scenario, backend=backend, **kwargs)  # type: ignore[arg-type]
            this[name] = time.perf_counter() - start
            walls[name] = min(walls.get(name, float("inf")), this[name])
        ratios.append(this["ray, 1 host"] / this["inline"])
    ray.shutdown()
    print(
        f"FedAvg, 100 clients, 10% participation, {args.model.upper()} on digits, "
        f"{args.local_epochs} local epochs, lr 0.1, batch 16, 20 rounds (best of {args.repeat})"
    )
    base = results["inline"]
    for name, wall in walls.items():
        r = results[name]
        same = r.metrics.equals(base.metrics)
        warm = f"   warm actors {r.summary['hosts_reused']}" if "hosts_reused" in r.summary else ""
        if "graph_executions" in r.summary:
            warm += (
                f"   host calls {r.summary['host_calls']} in "
                f"{r.summary['graph_executions']} executions"
            )
        print(
            f"  {name:14s} {wall:7.2f} s   accuracy {r.final['accuracy']:.4f}   "
            f"simulated {r.summary['sim_time']:.3f} s   identical to inline: {same}{warm}"
        )
    one, two = walls["ray, 1 host"], walls["ray, 2 hosts"]
    print(f"  ratio ray 1 host / inline: {one / walls['inline']:.2f}  (target <= 1.5)")
    ratios.sort()
    within = sum(r <= 1.5 for r in ratios)
    print(
        f"  the same ratio in each of the {len(ratios)} repeats: median "
        f"{ratios[len(ratios) // 2]:.2f}, from {ratios[0]:.2f} to {ratios[-1]:.2f}; "
        f"at most 1.5 in {within}"
    )
    print(f"  speedup of 2 Ray hosts over 1: {one / two:.2f}")


if __name__ == "__main__":
    main()
