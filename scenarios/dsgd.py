"""Decentralized SGD (D-PSGD): every node trains a small torch model on its
own shard and averages with its neighbours, on any topology.

    netsim run scenarios/dsgd.py --set topology=ring --set nodes=16 --backend ray --hosts 2

``engine=numpy`` trains the ``mlp`` or ``logreg`` with plain SGD in numpy,
without torch. ``codec`` encodes the models nodes broadcast: ``none`` (float32), ``fp16``
or ``fedcode`` (a 64-entry k-means codebook and 6-bit indices).
Records, every round, test ``accuracy`` and ``loss`` of the average model,
``node_accuracy`` (mean of each node's own model) and ``consensus_distance``.
``summary.json`` ``final`` has the last ``accuracy`` and ``time_to_target_s``.
"""

from typing import Literal

import netsim
import topologies
from algorithms import DSGD, DataSpec, LearningConfig, federated
from netsim import rng


def scenario(
    nodes: int = 16,
    topology: str = "erdos_renyi",
    rounds: int = 40,
    weights: Literal["metropolis", "uniform", "laplacian"] = "metropolis",
    dataset: Literal["digits", "synthetic"] = "digits",
    partition: Literal["iid", "dirichlet", "quantity"] = "iid",
    alpha: float = 0.5,
    model: Literal["mlp", "cnn", "logreg"] = "mlp",
    local_epochs: int = 1,
    batch_size: int = 16,
    lr: float = 0.1,
    optimizer: Literal["sgd", "adam"] = "sgd",
    engine: Literal["torch", "numpy"] = "torch",
    devices: Literal["homogeneous", "mixed"] = "mixed",
    codec: Literal["none", "fp16", "fedcode"] = "none",
    target_accuracy: float = 0.9,
    failures: float = 0.0,
    mttr_s: float = 0.2,
    seed: int = 0,
) -> netsim.Scenario:
    graph = topologies.build(topology, nodes, seed=rng.int_seed(seed, "topology"))
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
    algo = DSGD(
        learning=learning,
        rounds=rounds,
        weights=weights,
        target_accuracy=target_accuracy,
        codec=federated.codec(codec),
    )
    churn = netsim.Churn.from_downtime(failures, mttr_s)
    return netsim.Scenario(
        name="dsgd", graph=graph, algorithm=algo, seed=seed, failures=netsim.Failures(churn=churn)
    )
