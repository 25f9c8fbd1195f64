"""Server-side aggregation, as pure functions (testable without a simulation).

References: FedAvg, McMahan et al., AISTATS 2017; FedBuff, Nguyen et al.,
AISTATS 2022; FedCode, Khalilian et al. 2023 (``papers.md`` section 3).
"""

from __future__ import annotations

import math

import numpy as np

from algorithms.federated.codecs import snap, snap_flops


def weighted_average(vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_i w_i v_i / sum_i w_i`` (in float64, returned as float32)."""
    w = np.asarray(weights, dtype=np.float64)
    return (w @ np.asarray(vectors, dtype=np.float64) / w.sum()).astype(np.float32)


def average_flops(size: int, count: int) -> float:
    """A multiply and an add per value and vector."""
    return 2.0 * size * count


def staleness_weight(staleness: int) -> float:
    """FedBuff's down-weighting of an update computed on a model ``staleness``
    versions old: ``1 / sqrt(1 + staleness)``."""
    return 1.0 / math.sqrt(1 + staleness)


def buffered_step(
    model: np.ndarray, deltas: np.ndarray, weights: np.ndarray, server_lr: float
) -> np.ndarray:
    """FedBuff's server step: ``model + server_lr * sum_i w_i delta_i / len(buffer)``."""
    d = np.asarray(deltas, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    return (model + server_lr * (w @ d) / len(w)).astype(np.float32)


def pooled_codebook_snap(model: np.ndarray, codebooks: list[np.ndarray]) -> np.ndarray:
    """FedCode's aggregation of codebook-only updates: pool and sort every
    client's codebook, and snap each weight of the server's model to its
    nearest pooled value."""
    pooled = np.sort(np.concatenate([np.asarray(c, dtype=np.float64) for c in codebooks]))
    return snap(model, pooled)


def pooled_snap_flops(size: int, codebooks: int, clusters: int) -> float:
    """Sorting the pool, then a binary search per weight."""
    pool = codebooks * clusters
    return pool * math.log2(max(pool, 2)) + snap_flops(size, pool)
