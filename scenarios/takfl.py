"""Device-heterogeneous federated learning: TAKFL (Morafah et al. 2024;
papers.md section 5) against FedDF and per-prototype FedAvg, on the same
devices, data, clock and failures; only ``algorithm`` changes.

    netsim run scenarios/takfl.py --out runs/takfl
    netsim run scenarios/takfl.py --set algorithm=feddf --out runs/feddf
    netsim sweep scenarios/takfl.py --grid algorithm=fedavg,feddf,takfl --seeds 3

Three device prototypes on a star around a server (node 0), as in the
paper's setup: many ``small`` devices (IoT boards, an MLP with 16 hidden
units), fewer ``medium`` ones (phones, an MLP with 64) and a couple of
``large`` ones (laptops, a 1-D CNN with 32 channels), holding 10%, 30% and
60% of the clients' data, each split among its clients with Dirichlet(alpha)
label skew. Data: MNIST-1D, where capacity matters (digits works too). The
server keeps an unlabeled public split for distillation and a small labelled
validation split for TAKFL's heuristic choice of merging coefficients.
Records ``accuracy`` (the mean over prototypes) and ``accuracy_<prototype>``,
bytes per prototype and direction, each client's download, compute and
upload times, and the server's time per round (``server_s``).
"""

from typing import Literal

import netsim
import topologies
from algorithms import TAKFL, DataSpec, FedAvg, FedDF, LearningConfig, ModelSpec
from topologies.attributes import PROFILES

DEVICE_OF = {"small": "iot", "medium": "phone", "large": "laptop"}


def scenario(
    algorithm: Literal["fedavg", "feddf", "takfl"] = "takfl",
    small_clients: int = 10,
    medium_clients: int = 5,
    large_clients: int = 2,
    small_share: float = 0.1,
    medium_share: float = 0.3,
    large_share: float = 0.6,
    small_hidden: int = 16,
    medium_hidden: int = 64,
    large_channels: int = 32,
    rounds: int = 30,
    participation: float = 1.0,
    dataset: Literal["mnist1d", "digits"] = "mnist1d",
    samples: int = 10_000,
    alpha: float = 0.3,
    public_fraction: float = 0.2,
    validation_fraction: float = 0.05,
    local_epochs: int = 2,
    batch_size: int = 32,
    lr: float = 1e-3,
    distill_epochs: int = 10,
    distill_lr: float = 1e-3,
    temperature: float = 3.0,
    self_temperature: float = 20.0,
    self_reg: float = 0.01,
    lambdas: Literal["uniform", "heuristic"] = "heuristic",
    candidates: int = 5,
    server_flops: float = 1e12,
    latency_s: float = 0.02,
    target_accuracy: float = 0.4,
    failures: float = 0.0,
    mttr_s: float = 5.0,
    seed: int = 0,
) -> netsim.Scenario:
    counts = {"small": small_clients, "medium": medium_clients, "large": large_clients}
    n = 1 + sum(counts.values())
    graph = topologies.build("star", n)
    graph.nodes[0].update(tier="cloud", compute_flops=server_flops)
    classes = {c.name: c for c in PROFILES["mixed"]}
    k = 1
    for prototype, count in counts.items():
        device = classes[DEVICE_OF[prototype]]
        for _ in range(count):
            graph.nodes[k].update(
                prototype=prototype,
                device_class=device.name,
                compute_flops=device.compute_flops,
                uplink_Bps=device.uplink_Bps,
                downlink_Bps=device.downlink_Bps,
            )
            k += 1
    topologies.assign_devices(graph, "mixed", seed=seed)  # the rest of each class's attributes
    topologies.assign_links(graph, latency_s=latency_s, seed=seed)
    shares = {"small": small_share, "medium": medium_share, "large": large_share}
    learning = LearningConfig(
        data=DataSpec(
            dataset,
            partition="dirichlet",
            alpha=alpha,
            samples=samples,
            public_fraction=public_fraction,
            validation_fraction=validation_fraction,
            shares={p: s for p, s in shares.items() if counts[p] > 0},
        ),
        prototypes={
            p: spec
            for p, spec in {
                "small": ModelSpec("mlp", small_hidden),
                "medium": ModelSpec("mlp", medium_hidden),
                "large": ModelSpec("cnn", large_channels),
            }.items()
            if counts[p] > 0
        },
        local_epochs=local_epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer="adam",
    )
    common = {
        "learning": learning,
        "rounds": rounds,
        "participation": participation,
        "target_accuracy": target_accuracy,
    }
    algo: FedAvg | FedDF | TAKFL
    if algorithm == "fedavg":
        algo = FedAvg(**common)  # type: ignore[arg-type]
    else:
        distill = {
            "temperature": temperature,
            "distill_epochs": distill_epochs,
            "distill_lr": distill_lr,
        }
        if algorithm == "feddf":
            algo = FedDF(**common, **distill)  # type: ignore[arg-type]
        else:
            algo = TAKFL(
                **common,  # type: ignore[arg-type]
                **distill,
                self_temperature=self_temperature,
                self_reg=self_reg,
                lambdas=lambdas,
                candidates=candidates,
            )
    churn = netsim.Churn.from_downtime(failures, mttr_s, nodes=tuple(range(1, n)))
    return netsim.Scenario(
        name="takfl", graph=graph, algorithm=algo, seed=seed, failures=netsim.Failures(churn=churn)
    )
