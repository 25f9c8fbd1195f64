"""Quickstart: ATC diffusion LMS on a wireless (random geometric) network of
mixed devices (phones, laptops, IoT), every node down 10% of the time (mean
down time 50 ms, about 40 rounds).

    netsim run scenarios/quickstart.py --out runs/quickstart
"""

from typing import Literal

import netsim
import topologies
from algorithms import DiffusionLMS, assign_node_parameters
from netsim import rng


def scenario(
    nodes: int = 30,
    iterations: int = 1500,
    failures: float = 0.1,
    strategy: Literal["atc", "cta", "noncoop"] = "atc",
    seed: int = 0,
) -> netsim.Scenario:
    graph = topologies.build("random_geometric", nodes, seed=rng.int_seed(seed, "topology"))
    topologies.assign_devices(graph, "mixed", seed=seed)
    topologies.assign_links(graph, seed=seed)
    assign_node_parameters(graph, mu=0.02, noise_var=0.01, noise_spread=4.0, seed=seed)
    return netsim.Scenario(
        name="quickstart",
        graph=graph,
        algorithm=DiffusionLMS(dim=10, iterations=iterations, strategy=strategy),
        seed=seed,
        failures=netsim.Failures(churn=netsim.Churn.from_downtime(failures, mttr_s=0.05)),
    )
