"""Average consensus on a network: synchronous rounds or randomized gossip.

Records the network-wide ``consensus_error`` = ||x(t) - mean|| / ||x(0) - mean||
every iteration. With ``failures > 0`` every node churns, down that fraction
of the time on average (exponential up and down times, mean down time
``mttr_s``).
"""

from typing import Literal

import netsim
import topologies
from algorithms import AverageConsensus, RandomizedGossip
from netsim import rng


def scenario(
    nodes: int = 20,
    topology: str = "erdos_renyi",
    iterations: int = 100,
    weights: Literal["metropolis", "uniform", "laplacian"] = "metropolis",
    algorithm: Literal["sync", "gossip"] = "sync",
    dim: int = 1,
    devices: Literal["homogeneous", "mixed"] = "homogeneous",
    latency_s: float = 0.005,
    failures: float = 0.0,
    mttr_s: float = 0.05,
    on_recover: Literal["resume", "restart"] = "resume",
    seed: int = 0,
) -> netsim.Scenario:
    graph = topologies.build(topology, nodes, seed=rng.int_seed(seed, "topology"))
    topologies.assign_devices(graph, devices, seed=seed)
    topologies.assign_links(graph, latency_s=latency_s, seed=seed)
    algo = (
        AverageConsensus(iterations=iterations, dim=dim, weights=weights)
        if algorithm == "sync"
        else RandomizedGossip(iterations=iterations, dim=dim)
    )
    churn = netsim.Churn.from_downtime(failures, mttr_s)
    return netsim.Scenario(
        name="consensus",
        graph=graph,
        algorithm=algo,
        seed=seed,
        failures=netsim.Failures(churn=churn, on_recover=on_recover),
    )
