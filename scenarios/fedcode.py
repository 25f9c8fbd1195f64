"""FedCode (Khalilian et al. 2023; papers.md section 3) against FedAvg and
other codecs: a server (node 0) and ``clients`` devices on a star, the same
data, model, devices and failures; only the codec changes.

    netsim run scenarios/fedcode.py --out runs/fedcode
    netsim run scenarios/fedcode.py --set codec=none --out runs/fedavg
    netsim sweep scenarios/fedcode.py --grid codec=none,fedcode --grid uplink_Bps=1e4,1e5,1e6,1e7

``codec``: ``none`` (FedAvg, float32), ``fedcode`` (codebooks both ways, on
FedCode's schedule), ``fp16`` (half precision both ways), ``qsgd``
(``qsgd_bits``-bit stochastic quantization of updates) or ``topk`` (the
``topk_fraction`` largest entries of updates, with error feedback); the last
two leave the downlink uncompressed. Defaults follow the paper's setup where
the data allow: 10 clients, full participation, Adam (lr 1e-3), 4 local
epochs; batch 32 instead of 128 (digits gives each client about 144 examples),
and an MLP 64-200-10 (15,010 parameters) on digits. Clients' uplink and
downlink bandwidths and compute budgets are parameters; the server is a
cloud machine. Records test ``accuracy`` and ``loss``, ``bytes_down`` and
``bytes_up`` per round, and per-device compute, energy and bytes.
"""

from typing import Literal

import netsim
import topologies
from algorithms import DataSpec, FedAvg, FedCode, LearningConfig
from algorithms.federated import FP16, QSGD, Codec, Identity, TopK


def scenario(
    codec: Literal["none", "fedcode", "fp16", "qsgd", "topk"] = "fedcode",
    clients: int = 10,
    rounds: int = 60,
    participation: float = 1.0,
    K: int = 64,
    start_rnd: int = 2,
    f1: int = 5,
    f2: int = 2,
    qsgd_bits: int = 4,
    topk_fraction: float = 0.05,
    dataset: Literal["digits", "synthetic"] = "digits",
    partition: Literal["iid", "dirichlet", "quantity"] = "iid",
    alpha: float = 0.5,
    model: Literal["mlp", "cnn", "logreg"] = "mlp",
    hidden: int = 200,
    local_epochs: int = 4,
    batch_size: int = 32,
    lr: float = 1e-3,
    optimizer: Literal["sgd", "adam"] = "adam",
    uplink_Bps: float = 2.5e6,
    downlink_Bps: float = 1.25e7,
    compute_flops: float = 1e9,
    latency_s: float = 0.02,
    target_accuracy: float = 0.9,
    failures: float = 0.0,
    mttr_s: float = 1.0,
    seed: int = 0,
) -> netsim.Scenario:
    graph = topologies.build("star", clients + 1)
    graph.nodes[0]["tier"] = "cloud"  # the server gets server-class hardware
    for k in range(1, clients + 1):
        graph.nodes[k].update(
            uplink_Bps=uplink_Bps, downlink_Bps=downlink_Bps, compute_flops=compute_flops
        )
    topologies.assign_devices(graph, "homogeneous", seed=seed)
    topologies.assign_links(graph, latency_s=latency_s, seed=seed)
    learning = LearningConfig(
        data=DataSpec(dataset, partition=partition, alpha=alpha),
        model=model,
        hidden=hidden,
        local_epochs=local_epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
    )
    algo: FedAvg | FedCode
    if codec == "fedcode":
        algo = FedCode(
            learning=learning,
            rounds=rounds,
            participation=participation,
            target_accuracy=target_accuracy,
            clusters=K,
            start_rnd=start_rnd,
            f1=f1,
            f2=f2,
        )
    else:
        up: Codec = Identity()
        down: Codec = Identity()
        if codec == "fp16":
            up = down = FP16()
        elif codec == "qsgd":
            up = QSGD(qsgd_bits)
        elif codec == "topk":
            up = TopK(topk_fraction)
        algo = FedAvg(
            learning=learning,
            rounds=rounds,
            participation=participation,
            target_accuracy=target_accuracy,
            up=up,
            down=down,
        )
    churn = netsim.Churn.from_downtime(failures, mttr_s, nodes=tuple(range(1, clients + 1)))
    return netsim.Scenario(
        name="fedcode",
        graph=graph,
        algorithm=algo,
        seed=seed,
        failures=netsim.Failures(churn=churn),
    )
