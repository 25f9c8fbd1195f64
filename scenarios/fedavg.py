"""Federated averaging of a small torch model on simulated heterogeneous
devices: a server (node 0) and ``clients`` devices on a star, or under edge
aggregators on the two-tier edge-cloud hierarchy.

    netsim run scenarios/fedavg.py --set clients=50 --set participation=0.2 --set deadline_s=0.05
    netsim run scenarios/fedavg.py --set mode=async     # FedBuff: buffered asynchronous

``engine=numpy`` trains the ``mlp`` or ``logreg`` with plain SGD in numpy,
without importing torch (:mod:`algorithms.numpy_models`); the default,
``torch``, runs every model and optimizer.
``mode=async`` runs FedBuff with as many clients training at once as a
synchronous round selects, and a buffer of half of them per version.
Records test ``accuracy`` and ``loss`` of the global model, round durations,
updates used / late / lost, bytes, and per-device compute, energy and
``update_used`` each round. ``summary.json`` ``final`` has the last
``accuracy`` and ``time_to_target_s`` (first time accuracy reached
``target_accuracy``). With ``failures > 0`` clients churn (never the server).
"""

import math
from typing import Literal

import netsim
import topologies
from algorithms import DataSpec, FedAvg, FedBuff, LearningConfig


def scenario(
    clients: int = 50,
    participation: float = 0.2,
    rounds: int = 30,
    mode: Literal["sync", "async"] = "sync",
    deadline_s: float | None = None,
    over_selection: float = 0.0,
    topology: Literal["star", "edge_cloud"] = "star",
    dataset: Literal["digits", "synthetic"] = "digits",
    partition: Literal["iid", "dirichlet", "quantity"] = "iid",
    alpha: float = 0.5,
    model: Literal["mlp", "cnn", "logreg"] = "mlp",
    local_epochs: int = 5,
    batch_size: int = 16,
    lr: float = 0.2,
    optimizer: Literal["sgd", "adam"] = "sgd",
    engine: Literal["torch", "numpy"] = "torch",
    devices: Literal["homogeneous", "mixed"] = "mixed",
    target_accuracy: float = 0.9,
    failures: float = 0.0,
    mttr_s: float = 0.2,
    seed: int = 0,
) -> netsim.Scenario:
    if topology == "star":
        graph = topologies.build("star", clients + 1)
        graph.nodes[0]["tier"] = "cloud"  # the server gets server-class hardware
    else:
        edges = max(1, round(math.sqrt(clients)))
        graph = topologies.build("edge_cloud", clients + edges + 1, edge_servers=edges)
    topologies.assign_devices(graph, devices, seed=seed)
    topologies.assign_links(graph, latency_s=0.005, seed=seed)
    learning = LearningConfig(
        data=DataSpec(dataset, partition=partition, alpha=alpha),
        model=model,
        local_epochs=local_epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
        engine=engine,
    )
    algo: FedAvg | FedBuff
    if mode == "sync":
        algo = FedAvg(
            learning=learning,
            rounds=rounds,
            participation=participation,
            deadline_s=deadline_s,
            over_selection=over_selection,
            server=0,
            target_accuracy=target_accuracy,
        )
    else:  # as many clients at work as a synchronous round selects; half of them per version
        concurrency = max(1, math.ceil(participation * clients))
        algo = FedBuff(
            learning=learning,
            rounds=rounds,
            concurrency=concurrency,
            buffer_size=max(1, concurrency // 2),
            server=0,
            target_accuracy=target_accuracy,
        )
    client_nodes = tuple(k for k in graph.nodes if graph.degree[k] == 1)
    churn = netsim.Churn.from_downtime(failures, mttr_s, nodes=client_nodes)
    return netsim.Scenario(
        name="fedavg", graph=graph, algorithm=algo, seed=seed, failures=netsim.Failures(churn=churn)
    )
