"""Benchmark: how many Ray hosts a run starts, and what it costs. Prints, in
one run, the rate of actor creation with one actor per device (the literal
actor model), and the wall time of a 64-node consensus run (50 iterations)
under the old default (one actor per device) and the new one (one actor per
CPU of the cluster), with their metrics checked identical. No assertions.

    python bench/bench_ray_hosts.py [--devices 16,32,64]

Each configuration starts its own local Ray instance (as `netsim run` does),
so worker processes are not reused between them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import netsim
from netsim import scenario_file

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "consensus.py"


def creation_rate(devices: int, concurrency: int | None) -> float:
    """Devices per second of actor creation, one actor per device."""
    import ray

    from actors.ray_backend import RayBackend
    from netsim.kernel import HostSetup
    from netsim.runner import prepare

    scenario = scenario_file.load(SCENARIO).build({"nodes": devices, "iterations": 1})
    prepared = prepare(scenario)
    config = {} if concurrency is None else {"worker_maximum_startup_concurrency": concurrency}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _system_config=config)
    try:
        setup = HostSetup(
            seed=0,
            devices=np.arange(devices),
            n_nodes=devices,
            nodes=prepared.node_arrays,
            link_src=prepared.links.src,
            link_dst=prepared.links.dst,
            link_weight=prepared.link_weight,
            self_weight=prepared.self_weight,
        )
        start = time.perf_counter()
        backend = RayBackend(scenario.algorithm.program, setup, None, [])
        seconds = time.perf_counter() - start
        backend.close()
    finally:
        ray.shutdown()
    return devices / seconds


def consensus_wall(hosts: object) -> tuple[float, netsim.Result]:
    scenario = scenario_file.load(SCENARIO).build({"nodes": 64, "iterations": 50})
    start = time.perf_counter()
    result = netsim.run(scenario, backend="ray", hosts=hosts)  # type: ignore[arg-type]
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="16,32,64")
    args = parser.parse_args()
    counts = [int(x) for x in args.devices.split(",")]
    print("actor creation, one actor per device (devices per second)")
    for concurrency in (None, 8):
        label = (
            "Ray's default startup concurrency"
            if concurrency is None
            else f"concurrency {concurrency}"
        )
        rates = [creation_rate(n, concurrency) for n in counts]
        print(
            f"  {label:36s} "
            + "  ".join(f"{n} devices: {r:5.2f}/s" for n, r in zip(counts, rates, strict=True))
        )
    reference = netsim.run(scenario_file.load(SCENARIO).build({"nodes": 64, "iterations": 50}))
    print("64-node consensus, 50 iterations, whole run (Ray start-up included)")
    for label, hosts in (
        ("old default: one actor per device", "per-device"),
        ("new default: one per CPU", None),
    ):
        wall, result = consensus_wall(hosts)
        same = result.metrics.equals(reference.metrics)
        print(
            f"  {label:36s} {wall:6.1f} s   {result.summary['hosts']} hosts "
            f"({result.summary['hosts_chosen']})   identical to inline: {same}"
        )


if __name__ == "__main__":
    main()
