"""Server-based federated learning: one host program, one round template, and
short modules per method on top.

- :mod:`~algorithms.federated.codecs`: what models and updates look like on
  the wire (identity, fp16, QSGD, top-k with error feedback, FedCode's
  codebook);
- :mod:`~algorithms.federated.aggregation`: pure aggregation functions;
- :mod:`~algorithms.federated.routing`: the tree messages travel along;
- :mod:`~algorithms.federated.program`: the device state and kernels;
- :mod:`~algorithms.federated.driver` and :mod:`~algorithms.federated.sync`:
  the driver side, and the synchronous round template;
- FedAvg, FedBuff (asynchronous) and FedCode (seed paper).
"""

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

__all__ = [
    "CODECS",
    "FP16",
    "QSGD",
    "Codebook",
    "Codec",
    "Encoded",
    "FedAvg",
    "FedBuff",
    "FedCode",
    "FedCodeSchedule",
    "Identity",
    "TopK",
    "codec",
]
