"""FedAvg and D-PSGD side by side under the same failures: the clients
(nodes 0..clients-1) fail as the first LANL nodes did in 2004 (the Failure
Trace Archive slice shipped in scenarios/data), compressed onto the run.

    netsim run scenarios/fl_compare.py --set algorithm=fedavg --out runs/fedavg
    netsim run scenarios/fl_compare.py --set algorithm=dsgd --out runs/dsgd
    netsim plot runs/fedavg runs/dsgd --metric accuracy -o accuracy.png

FedAvg uses a star whose hub is an extra server node (``clients``), which
never fails; D-PSGD an Erdos-Renyi graph on the clients alone. Both run
``rounds`` rounds of ``round_s`` simulated seconds, so the trace maps onto the
same span of simulated time and both see identical failure times (their
``failures.csv`` agree).
"""

from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import netsim
import topologies
from algorithms import DSGD, DataSpec, FedAvg, LearningConfig
from netsim import rng, trace_import

LANL_2004 = Path(__file__).resolve().parent / "data" / "lanl_2004_128nodes.tab"


def scenario(
    algorithm: Literal["fedavg", "dsgd"] = "fedavg",
    clients: int = 16,
    rounds: int = 30,
    round_s: float = 0.1,
    replay: bool = True,
    partition: Literal["iid", "dirichlet", "quantity"] = "iid",
    seed: int = 0,
) -> netsim.Scenario:
    learning = LearningConfig(data=DataSpec("digits", partition=partition), local_epochs=2, lr=0.2)
    algo: FedAvg | DSGD
    if algorithm == "fedavg":
        graph = topologies.build("star", clients + 1)
        graph = netsim_hub_last(graph, clients)
        algo = FedAvg(learning=learning, rounds=rounds, server=clients, deadline_s=round_s)
    else:
        graph = topologies.build("erdos_renyi", clients, seed=rng.int_seed(seed, "topology"))
        algo = DSGD(learning=learning, rounds=rounds, period_s=round_s)
    topologies.assign_devices(graph, "mixed", seed=seed)
    topologies.assign_links(graph, latency_s=0.005, seed=seed)
    failures = netsim.Failures()
    if replay:
        window = 366 * 86400.0
        imported = trace_import.to_events(
            trace_import.read_fta(LANL_2004),
            trace_import.Selection(
                start=datetime(2004, 1, 1, tzinfo=timezone.utc).timestamp(),
                duration=window,
                scale=window / (rounds * round_s),
                nodes=clients,
                gap="unknown",
            ),
        )
        failures = netsim.Failures(events=tuple(imported.events))
    return netsim.Scenario(
        name=f"fl_compare_{algorithm}", graph=graph, algorithm=algo, seed=seed, failures=failures
    )


def netsim_hub_last(star, clients):  # type: ignore[no-untyped-def]
    """The star with its hub renumbered to ``clients`` (clients keep 0..clients-1)."""
    import networkx as nx

    mapping = {0: clients, **{k: k - 1 for k in range(1, clients + 1)}}
    graph = nx.relabel_nodes(star, mapping)
    ordered = nx.Graph()
    ordered.add_nodes_from(sorted(graph.nodes(data=True)))
    ordered.add_edges_from(graph.edges(data=True))
    ordered.nodes[clients]["tier"] = "cloud"
    return ordered
