"""Real failures: diffusion LMS (or consensus) with the LANL availability
trace of 2004 (Failure Trace Archive) mapped onto the network.

The year is compressed onto the run: with 10 ms rounds, 1000 iterations last
10 simulated seconds, so one simulated second is 36.5 days of the trace. Node
``k`` fails when the ``k``-th LANL node (in id order, among those with data in
2004) did. Compare with the same run without failures:

    netsim run scenarios/trace_replay.py --out runs/lanl
    netsim run scenarios/trace_replay.py --set replay=false --out runs/no-failures

``gap``: what a time without LANL records means (``unknown``: the node keeps
its last known state; ``down``). Another FTA table can be given as ``fta_file``.
"""

from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import netsim
import topologies
from algorithms import AverageConsensus, DiffusionLMS, assign_node_parameters
from netsim import rng, trace_import

LANL_2004 = Path(__file__).resolve().parent / "data" / "lanl_2004_128nodes.tab"
YEAR_2004 = datetime(2004, 1, 1, tzinfo=timezone.utc).timestamp()


def scenario(
    nodes: int = 64,
    topology: str = "erdos_renyi",
    algorithm: Literal["diffusion", "consensus"] = "diffusion",
    iterations: int = 1000,
    round_s: float = 0.01,
    replay: bool = True,
    gap: Literal["unknown", "down"] = "unknown",
    days: float = 366.0,
    fta_file: str = str(LANL_2004),
    seed: int = 0,
) -> netsim.Scenario:
    graph = topologies.build(topology, nodes, seed=rng.int_seed(seed, "topology"))
    topologies.assign_devices(graph, "homogeneous", seed=seed)
    topologies.assign_links(graph, seed=seed)
    if algorithm == "diffusion":
        assign_node_parameters(graph, mu=0.02, noise_var=0.01, seed=seed)
        algo = DiffusionLMS(dim=10, iterations=iterations, period_s=round_s)
    else:
        algo = AverageConsensus(iterations=iterations, period_s=round_s)
    failures = netsim.Failures()
    if replay:
        window = days * 86400.0
        imported = trace_import.to_events(
            trace_import.read_fta(fta_file),
            trace_import.Selection(
                start=YEAR_2004,
                duration=window,
                scale=window / (iterations * round_s),  # the window spans the run
                nodes=nodes,
                gap=gap,
            ),
        )
        failures = netsim.Failures(events=tuple(imported.events))
    return netsim.Scenario(
        name="trace_replay", graph=graph, algorithm=algo, seed=seed, failures=failures
    )
