"""Server-based federated learning: one host program, one round template, and
short modules per method on top.

- :mod:`~algorithms.federated.codecs`: what models and updates look like on
  the wire (identity, fp16, QSGD, top-k with error feedback, FedCode's
  codebook);
- :mod:`~algorithms.federated.aggregation`: pure aggregation functions;
- :mod:`~algorithms.federated.routing`: the tree messages travel along;
- :mod:`~algorithms.federated.program`: the device state and kernels;
- :mod:`~algorithms.federated.driver`, :mod:`~algorithms.federated.sync` and
  :mod:`~algorithms.federated.hooks`: the driver side, the synchronous round
  template and its hooks;
- :mod:`~algorithms.federated.distillation` and
  :mod:`~algorithms.federated.transfer`: knowledge transfer between device
  prototypes at the server;
- :mod:`~algorithms.federated.rewards`: contribution estimates and reward
  allocation;
- FedAvg (per prototype), FedBuff (asynchronous), FedCode (seed paper), FedDF
  and TAKFL (seed paper), Aequa (seed paper) and the standalone baseline.

What devices train (model specs by device prototype) is
:class:`~algorithms.learning.LearningConfig`, shared with D-PSGD.
"""

from algorithms.federated.aequa import Aequa, Standalone
from algorithms.federated.codecs import (
    CODECS,
    FP16,
    QSGD,
    Codebook,
    Codec,
    Encoded,
    Identity,
    TopK,
)
from algorithms.federated.codecs import by_name as codec
from algorithms.federated.fedavg import FedAvg
from algorithms.federated.fedbuff import FedBuff
from algorithms.federated.fedcode import FedCode, FedCodeSchedule
from algorithms.federated.takfl import TAKFL, FedDF
from algorithms.learning import LearningConfig, ModelSpec

__all__ = [
    "CODECS",
    "FP16",
    "QSGD",
    "TAKFL",
    "Aequa",
    "Codebook",
    "Codec",
    "Encoded",
    "FedAvg",
    "FedBuff",
    "FedCode",
    "FedCodeSchedule",
    "FedDF",
    "Identity",
    "LearningConfig",
    "ModelSpec",
    "Standalone",
    "TopK",
    "codec",
]
