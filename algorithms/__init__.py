"""Algorithms: consensus, gossip, diffusion LMS and its sparse variants, APSM,
decentralized SGD, the server-based federated family (FedAvg, FedBuff,
FedCode, FedDF, TAKFL, Aequa: :mod:`algorithms.federated`), and split-computing
inference (:mod:`algorithms.split`).

Each algorithm is a frozen dataclass of hyper-parameters with explicit parts:
``check``, ``program`` (host-side kernels, their costs and ``reset``),
``protocol`` (driver side) and ``final`` (see :mod:`netsim.algorithm`).
"""

from __future__ import annotations

from algorithms.apsm import APSM
from algorithms.base import Algorithm, Final
from algorithms.consensus import AverageConsensus
from algorithms.datasets import DataSpec
from algorithms.diffusion_lms import DiffusionLMS, assign_node_parameters
from algorithms.dsgd import DSGD
from algorithms.federated import TAKFL, Aequa, FedAvg, FedBuff, FedCode, FedDF, Standalone
from algorithms.gossip import RandomizedGossip
from algorithms.learning import LearningConfig, ModelSpec
from algorithms.split import SplitInference
from netsim.errors import InputError

ALGORITHMS: dict[str, type] = {
    "consensus": AverageConsensus,
    "gossip": RandomizedGossip,
    "diffusion_lms": DiffusionLMS,
    "apsm": APSM,
    "fedavg": FedAvg,
    "fedbuff": FedBuff,
    "fedcode": FedCode,
    "feddf": FedDF,
    "takfl": TAKFL,
    "aequa": Aequa,
    "standalone": Standalone,
    "dsgd": DSGD,
    "split_inference": SplitInference,
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
    "TAKFL",
    "Aequa",
    "Algorithm",
    "AverageConsensus",
    "DataSpec",
    "DiffusionLMS",
    "FedAvg",
    "FedBuff",
    "FedCode",
    "FedDF",
    "Final",
    "LearningConfig",
    "ModelSpec",
    "RandomizedGossip",
    "SplitInference",
    "assign_node_parameters",
    "get",
]
