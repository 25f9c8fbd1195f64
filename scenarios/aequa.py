"""Fair rewards with a slimmable model: Aequa (Tastan et al. 2025; papers.md
section 4) against FedAvg and standalone training, on the same participants,
devices, clock and failures; only ``algorithm`` changes.

    netsim run scenarios/aequa.py --out runs/aequa
    netsim run scenarios/aequa.py --set algorithm=fedavg --out runs/fedavg
    netsim sweep scenarios/aequa.py --grid algorithm=aequa,fedavg,standalone --seeds 3

``honest`` participants on a star around a server (node 0), all phones, with
graded contributions: participant ``i`` (``i = 0 .. honest-1``) holds a data
share growing linearly from 1 to ``quantity_skew`` and a label-noise fraction
falling linearly from ``max_label_noise`` to 0, so that participant
``honest-1`` contributes most. Then ``free_riders`` more, who hold data but
never train: they return the model they received (``copy``), or it plus
noise (``noise``), or alternately (``both``). These settings are node
attributes (``data_weight``, ``label_noise``, ``free_rider``): ground truth
that Aequa's contribution estimate never reads.

``algorithm=aequa`` trains a slimmable model by the sandwich rule and rewards
each participant with a width; ``fedavg`` trains the same architecture,
dense, and everyone gets the one model; ``standalone`` trains each
participant alone for as many epochs. Data: MNIST-1D (digits works too); the
server keeps a labelled validation split for the width -> accuracy curve.
"""

from typing import Literal

import netsim
import topologies
from algorithms import Aequa, DataSpec, FedAvg, LearningConfig
from algorithms.federated import Standalone
from netsim.errors import InputError
from topologies.attributes import PROFILES


def scenario(
    algorithm: Literal["aequa", "fedavg", "standalone"] = "aequa",
    honest: int = 10,
    free_riders: int = 2,
    free_rider: Literal["copy", "noise", "both"] = "both",
    quantity_skew: float = 4.0,
    max_label_noise: float = 0.5,
    p_min: float = 0.25,
    widths: int = 16,
    model: Literal["mlp", "cnn"] = "mlp",
    hidden: int = 128,
    dataset: Literal["mnist1d", "digits"] = "mnist1d",
    samples: int = 8000,
    validation_fraction: float = 0.1,
    rounds: int = 30,
    local_epochs: int = 2,
    batch_size: int = 32,
    lr: float = 2e-3,
    latency_s: float = 0.02,
    target_accuracy: float = 0.5,
    failures: float = 0.0,
    mttr_s: float = 5.0,
    seed: int = 0,
) -> netsim.Scenario:
    if honest < 2:
        raise InputError(f"honest: expected at least 2 graded participants, got {honest}")
    if free_riders < 0:
        raise InputError(f"free_riders: expected a count >= 0, got {free_riders}")
    if not quantity_skew >= 1:
        raise InputError(f"quantity_skew: expected a ratio >= 1, got {quantity_skew}")
    if not 0 <= max_label_noise <= 1:
        raise InputError(f"max_label_noise: expected a fraction in [0, 1], got {max_label_noise}")
    n = 1 + honest + free_riders
    graph = topologies.build("star", n)
    phone = next(c for c in PROFILES["mixed"] if c.name == "phone")
    graph.nodes[0].update(tier="cloud", compute_flops=1e12)
    for k in range(1, n):
        graph.nodes[k].update(
            device_class=phone.name,
            compute_flops=phone.compute_flops,
            uplink_Bps=phone.uplink_Bps,
            downlink_Bps=phone.downlink_Bps,
        )
    for i in range(honest):
        graded = i / (honest - 1)
        graph.nodes[1 + i].update(
            data_weight=1 + (quantity_skew - 1) * graded,
            label_noise=max_label_noise * (1 - graded),
        )
    for j in range(free_riders):
        kind = free_rider if free_rider != "both" else ("copy", "noise")[j % 2]
        graph.nodes[1 + honest + j].update(data_weight=1.0, label_noise=0.0, free_rider=kind)
    topologies.assign_links(graph, latency_s=latency_s, seed=seed)
    learning = LearningConfig(
        data=DataSpec(dataset, samples=samples, validation_fraction=validation_fraction),
        model=model,
        hidden=hidden,
        slimmable=algorithm == "aequa",
        local_epochs=local_epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer="adam",
    )
    algo: Aequa | FedAvg | Standalone
    if algorithm == "aequa":
        algo = Aequa(
            learning,
            rounds=rounds,
            p_min=p_min,
            widths=widths,
            target_accuracy=target_accuracy,
        )
    elif algorithm == "fedavg":
        algo = FedAvg(learning, rounds=rounds, target_accuracy=target_accuracy)
    else:
        algo = Standalone(learning, rounds=rounds)
    churn = netsim.Churn.from_downtime(failures, mttr_s, nodes=tuple(range(1, n)))
    return netsim.Scenario(
        name="aequa", graph=graph, algorithm=algo, seed=seed, failures=netsim.Failures(churn=churn)
    )
