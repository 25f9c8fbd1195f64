"""Diffusion LMS (ATC, CTA or non-cooperative) estimating a vector from
streaming linear-regression data.

Records the network ``msd_db`` every iteration and per-node steady-state
``msd_db`` at the end; ``summary.json`` ``final.msd_db`` is the network MSD
averaged over the last 25% of iterations (linear domain, then dB).
With ``failures > 0`` every node churns, down that fraction of the time on
average (mean down time ``mttr_s``).
"""

import math
from typing import Literal

import netsim
import topologies
from algorithms import DiffusionLMS, assign_node_parameters
from netsim import rng


def scenario(
    nodes: int = 20,
    topology: str = "erdos_renyi",
    dim: int = 10,
    mu: float = 0.01,
    noise_var: float = 0.01,
    noise_spread: float = 1.0,
    iterations: int = 1000,
    combination: Literal["metropolis", "uniform", "laplacian"] = "metropolis",
    strategy: Literal["atc", "cta", "noncoop"] = "atc",
    devices: Literal["homogeneous", "mixed"] = "homogeneous",
    latency_s: float = 0.005,
    bandwidth_Bps: float = math.inf,
    failures: float = 0.0,
    mttr_s: float = 0.5,
    on_recover: Literal["resume", "restart"] = "resume",
    seed: int = 0,
) -> netsim.Scenario:
    graph = topologies.build(topology, nodes, seed=rng.int_seed(seed, "topology"))
    topologies.assign_devices(graph, devices, seed=seed)
    topologies.assign_links(graph, latency_s=latency_s, bandwidth_Bps=bandwidth_Bps, seed=seed)
    assign_node_parameters(graph, mu=mu, noise_var=noise_var, noise_spread=noise_spread, seed=seed)
    algo = DiffusionLMS(
        dim=dim, iterations=iterations, strategy=strategy, combination_rule=combination
    )
    churn = netsim.Churn.from_downtime(failures, mttr_s)
    return netsim.Scenario(
        name="diffusion_lms",
        graph=graph,
        algorithm=algo,
        seed=seed,
        failures=netsim.Failures(churn=churn, on_recover=on_recover),
    )
