"""Algorithms: consensus, gossip, diffusion LMS and its sparse variants, APSM,
federated averaging (synchronous and buffered asynchronous),
decentralized SGD.

Each algorithm is a frozen dataclass of hyper-parameters with a driver-side
protocol and host-side kernels (see :mod:`algorithms.base`).
"""

from __future__ import annotations

from algorithms.apsm import APSM
from algorithms.base import Algorithm, Final
from algorithms.consensus import AverageConsensus
from algorithms.datasets import DataSpec
from algorithms.diffusion_lms import DiffusionLMS, assign_node_parameters
from algorithms.dsgd import DSGD
from algorithms.fedavg import FedAvg, LearningConfig
from algorithms.fedbuff import FedBuff
from algorithms.gossip import RandomizedGossip
from netsim.errors import InputError

ALGORITHMS: dict[str, type] = {
    "consensus": AverageConsensus,
    "gossip": RandomizedGossip,
    "diffusion_lms": DiffusionLMS,
    "apsm": APSM,
    "fedavg": FedAvg,
    "dsgd": DSGD,
    "fedbuff": FedBuff,
}


def get(name: str) -> type:
    """The algorithm class registered as ``name``."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise InputError(
            f"unknown algorithm {name!r}; expected one of {', '.join(ALGORITHMS)}"
        ) from None


__all__ = [
    "ALGORITHMS",
    "APSM",
    "DSGD",
    "Algorithm",
    "AverageConsensus",
    "DataSpec",
    "DiffusionLMS",
    "FedAvg",
    "FedBuff",
    "Final",
    "LearningConfig",
    "RandomizedGossip",
    "assign_node_parameters",
    "get",
]
