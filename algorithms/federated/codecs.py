"""Codecs: what a model or an update looks like on the wire.

A codec turns a float vector into an :class:`Encoded` message whose size is
the bytes of the arrays it really carries (packed bits included), and back.
Any algorithm that sends a model or an update can take one; encoding and
decoding FLOPs are charged to the device that does them.

=============  ===================================================  ==============
codec          on the wire (``n`` values)                            encodes
=============  ===================================================  ==============
``none``       float32 values: ``4 n`` bytes                          anything
``fp16``       float16 values: ``2 n`` bytes                          anything
``qsgd``       stochastic uniform ``b``-bit levels and signs, one     updates
               float32 norm per bucket of 512 values:
               ``ceil(n b / 8) + ceil(n / 8) + 4 ceil(n / 512)`` bytes
``topk``       the ``k`` largest entries (error feedback): indices    updates
               of ``ceil(log2 n)`` bits, float32 values
``fedcode``    a k-means codebook of ``K`` float32 centroids, plus    models
               ``ceil(log2 K)``-bit indices (``kind="model"``), or
               the codebook alone (``kind="codebook"``)
=============  ===================================================  ==============

References: QSGD, Alistarh et al., NeurIPS 2017; top-k with error feedback,
Stich, Cordonnier & Jaggi, NeurIPS 2018; FedCode, Khalilian et al. 2023
(arXiv 2311.09270, ``papers.md`` section 3). Message sizes count payload
arrays only, no protocol headers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from netsim import checks

Target = Literal["any", "delta", "weights"]


@dataclass(frozen=True)
class Encoded:
    """One encoded vector of ``size`` values: ``arrays`` are what travels."""

    codec: str
    kind: str  # "model", or "codebook" (FedCode's codebook-only message)
    size: int
    arrays: tuple[np.ndarray, ...]

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self.arrays))


class Codec(Protocol):
    """``encode(x, memory, rng, kind) -> (message, memory, flops)``: ``memory`` is
    the codec's per-device state (error feedback), ``flops`` what encoding cost.
    ``decode(message, reference)``: ``reference`` is the receiver's own copy,
    needed by messages that are not self-contained (a codebook alone)."""

    @property
    def name(self) -> str: ...

    @property
    def target(self) -> Target:
        """What it may encode: models and updates, updates only, or models only."""
        ...

    def encode(
        self, x: np.ndarray, memory: np.ndarray | None, rng: np.random.Generator, kind: str
    ) -> tuple[Encoded, np.ndarray | None, float]: ...

    def decode(self, message: Encoded, reference: np.ndarray | None) -> np.ndarray: ...

    def decode_flops(self, size: int, kind: str) -> float: ...

    def known_cost(self, size: int, kind: str) -> tuple[int, float] | None:
        """The bytes of the message and the FLOPs of encoding a vector of
        ``size`` values, when they do not depend on the values (``None``:
        they do); the driver then need not wait for the encoding."""
        ...


# ---------------------------------------------------------------- bit packing
def bits_for(count: int) -> int:
    """Bits of an index into ``count`` items (at least 1)."""
    return max(1, math.ceil(math.log2(max(count, 2))))


def pack_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned integers ``< 2**bits`` packed MSB first: ``ceil(n bits / 8)`` bytes."""
    v = np.asarray(values, dtype=np.uint32)
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint32)
    return np.packbits(((v[:, None] >> shifts) & 1).astype(np.uint8).ravel())


def unpack_bits(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    flat = np.unpackbits(packed, count=count * bits).reshape(count, bits).astype(np.int64)
    return flat @ (1 << np.arange(bits - 1, -1, -1, dtype=np.int64))


def _check_kind(codec: str, kind: str) -> None:
    if kind != "model":
        raise ValueError(f"codec {codec} sends whole vectors only, not {kind!r} messages")


# ---------------------------------------------------------------- codecs
@dataclass(frozen=True)
class Identity:
    """float32 values as they are."""

    name: str = "none"
    target: Target = "any"

    def encode(
        self, x: np.ndarray, memory: np.ndarray | None, rng: np.random.Generator, kind: str
    ) -> tuple[Encoded, np.ndarray | None, float]:
        _check_kind(self.name, kind)
        return (
            Encoded(self.name, kind, len(x), (np.asarray(x, dtype=np.float32).copy(),)),
            None,
            0.0,
        )

    def decode(self, message: Encoded, reference: np.ndarray | None) -> np.ndarray:
        return message.arrays[0].copy()

    def decode_flops(self, size: int, kind: str) -> float:
        return 0.0

    def known_cost(self, size: int, kind: str) -> tuple[int, float] | None:
        return (4 * size, 0.0) if kind == "model" else None


@dataclass(frozen=True)
class FP16:
    """Half precision: one conversion per value each way."""

    name: str = "fp16"
    target: Target = "any"

    def encode(
        self, x: np.ndarray, memory: np.ndarray | None, rng: np.random.Generator, kind: str
    ) -> tuple[Encoded, np.ndarray | None, float]:
        _check_kind(self.name, kind)
        half = np.asarray(x).astype(np.float16)
        return Encoded(self.name, kind, len(x), (half,)), None, float(len(x))

    def decode(self, message: Encoded, reference: np.ndarray | None) -> np.ndarray:
        return message.arrays[0].astype(np.float32)

    def decode_flops(self, size: int, kind: str) -> float:
        return float(size)

    def known_cost(self, size: int, kind: str) -> tuple[int, float] | None:
        return (2 * size, float(size)) if kind == "model" else None


@dataclass(frozen=True)
class QSGD:
    """Stochastic uniform quantization of ``|x_i| / ||x_bucket||_2`` to
    ``s = 2**bits - 1`` levels (unbiased), plus signs and one norm per bucket
    of ``bucket`` values (as in the QSGD paper's experiments)."""

    bits: int = 4
    bucket: int = 512
    name: str = "qsgd"
    target: Target = "delta"

    def __post_init__(self) -> None:
        checks.positive_int("qsgd bits", self.bits)
        checks.positive_int("qsgd bucket", self.bucket)
        if self.bits > 16:
            raise ValueError("qsgd bits: expected at most 16")

    def _norms(self, n: int) -> np.ndarray:
        return np.arange(n) // self.bucket  # bucket of each value

    def encode(
        self, x: np.ndarray, memory: np.ndarray | None, rng: np.random.Generator, kind: str
    ) -> tuple[Encoded, np.ndarray | None, float]:
        _check_kind(self.name, kind)
        x = np.asarray(x, dtype=np.float64)
        s = 2**self.bits - 1
        bucket = self._norms(len(x))
        norms = np.sqrt(np.bincount(bucket, weights=x * x)).astype(np.float32)
        scale = norms.astype(np.float64)[bucket]
        scaled = np.divide(np.abs(x) * s, scale, out=np.zeros_like(x), where=scale > 0)
        low = np.floor(scaled)
        level = (low + (rng.random(len(x)) < scaled - low)).astype(np.uint32)
        arrays = (norms, pack_bits(level, self.bits), np.packbits(x < 0))
        return Encoded(self.name, kind, len(x), arrays), None, 6.0 * len(x)

    def decode(self, message: Encoded, reference: np.ndarray | None) -> np.ndarray:
        norms, levels, signs = message.arrays
        n, s = message.size, 2**self.bits - 1
        level = unpack_bits(levels, self.bits, n).astype(np.float64)
        sign = np.where(np.unpackbits(signs, count=n).astype(bool), -1.0, 1.0)
        scale = norms.astype(np.float64)[self._norms(n)]
        return (sign * level * scale / s).astype(np.float32)

    def decode_flops(self, size: int, kind: str) -> float:
        return 3.0 * size

    def known_cost(self, size: int, kind: str) -> tuple[int, float] | None:
        if kind != "model":
            return None
        norms = 4 * math.ceil(size / self.bucket)
        return norms + math.ceil(size * self.bits / 8) + math.ceil(size / 8), 6.0 * size


@dataclass(frozen=True)
class TopK:
    """The ``ceil(fraction n)`` entries of largest magnitude of ``x`` plus the
    error kept from earlier rounds; what is not sent is kept (error feedback)."""

    fraction: float = 0.05
    name: str = "topk"
    target: Target = "delta"

    def __post_init__(self) -> None:
        checks.number("topk fraction", self.fraction, low=0, high=1, low_open=True)

    def encode(
        self, x: np.ndarray, memory: np.ndarray | None, rng: np.random.Generator, kind: str
    ) -> tuple[Encoded, np.ndarray | None, float]:
        _check_kind(self.name, kind)
        v = np.asarray(x, dtype=np.float32) + (0 if memory is None else memory)
        n = len(v)
        k = max(1, math.ceil(self.fraction * n))
        idx = np.sort(np.argpartition(np.abs(v), n - k)[n - k :])
        values = v[idx].astype(np.float32)
        residual = v.copy()
        residual[idx] = 0
        arrays = (pack_bits(idx, bits_for(n)), values)
        return Encoded(self.name, kind, n, arrays), residual, 4.0 * n + k

    def decode(self, message: Encoded, reference: np.ndarray | None) -> np.ndarray:
        packed, values = message.arrays
        out = np.zeros(message.size, dtype=np.float32)
        out[unpack_bits(packed, bits_for(message.size), len(values))] = values
        return out

    def decode_flops(self, size: int, kind: str) -> float:
        return float(max(1, math.ceil(self.fraction * size)))

    def known_cost(self, size: int, kind: str) -> tuple[int, float] | None:
        if kind != "model":
            return None
        k = max(1, math.ceil(self.fraction * size))
        return math.ceil(k * bits_for(size) / 8) + 4 * k, 4.0 * size + k


@dataclass(frozen=True)
class Codebook:
    """FedCode's codebook: k-means (k-means++, scikit-learn) over all values of
    the vector as scalars, ``K`` clusters. ``kind="model"`` sends the codebook
    and each value's cluster index; ``kind="codebook"`` the codebook alone,
    which the receiver applies by snapping its own copy to the nearest
    centroid."""

    clusters: int = 64
    max_iter: int = 300
    name: str = "fedcode"
    target: Target = "weights"

    def __post_init__(self) -> None:
        checks.positive_int("K", self.clusters, minimum=2)
        checks.positive_int("kmeans max_iter", self.max_iter)

    def encode(
        self, x: np.ndarray, memory: np.ndarray | None, rng: np.random.Generator, kind: str
    ) -> tuple[Encoded, np.ndarray | None, float]:
        if kind not in ("model", "codebook"):
            raise ValueError(f"codec fedcode: unknown message kind {kind!r}")
        centroids, labels, flops = kmeans_codebook(x, self.clusters, rng, self.max_iter)
        if kind == "codebook":
            return Encoded(self.name, kind, len(x), (centroids,)), None, flops
        packed = pack_bits(labels, bits_for(self.clusters))
        return Encoded(self.name, kind, len(x), (centroids, packed)), None, flops

    def decode(self, message: Encoded, reference: np.ndarray | None) -> np.ndarray:
        centroids = message.arrays[0]
        if message.kind == "codebook":
            if reference is None:
                raise ValueError("a codebook alone needs the receiver's own weights to snap")
            return snap(reference, centroids)
        labels = unpack_bits(message.arrays[1], bits_for(self.clusters), message.size)
        return centroids[labels].astype(np.float32)

    def decode_flops(self, size: int, kind: str) -> float:
        if kind == "codebook":
            return snap_flops(size, self.clusters)
        return float(size)

    def known_cost(self, size: int, kind: str) -> tuple[int, float] | None:
        return None  # k-means: its iterations depend on the values


# ---------------------------------------------------------------- codebook math
def kmeans_codebook(
    x: np.ndarray, clusters: int, rng: np.random.Generator, max_iter: int = 300
) -> tuple[np.ndarray, np.ndarray, float]:
    """K-means (k-means++ seeding, one run) over the values of ``x`` as scalars.

    Returns sorted float32 centroids, each value's centroid index, and the
    FLOPs spent: seeding ``3 n K (2 + ln K)`` (each centre tries
    ``2 + ln K`` candidates over all points), then per Lloyd iteration
    actually run ``3 n K + n``. With fewer distinct values than ``K``, the
    distinct values are the codebook."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    values = np.asarray(x, dtype=np.float64)
    n = len(values)
    distinct = np.unique(values)
    if len(distinct) <= clusters:
        labels = np.searchsorted(distinct, values)
        return distinct.astype(np.float32), labels, float(n * math.log2(max(len(distinct), 2)))
    # one thread: the result must not depend on the host's core count
    with threadpool_limits(1):
        km = KMeans(
            n_clusters=clusters,
            init="k-means++",
            n_init=1,
            max_iter=max_iter,
            random_state=int(rng.integers(2**31 - 1)),
        ).fit(values.reshape(-1, 1))
    centres = km.cluster_centers_[:, 0]
    order = np.argsort(centres)
    rank = np.empty(clusters, dtype=np.int64)
    rank[order] = np.arange(clusters)
    seeding = 3.0 * n * clusters * (2 + math.log(clusters))
    flops = seeding + int(km.n_iter_) * (3.0 * n * clusters + n)
    return centres[order].astype(np.float32), rank[km.labels_], flops


def snap(values: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Each value replaced by the nearest entry of ``codebook`` (ties: the lower)."""
    book = np.sort(np.asarray(codebook, dtype=np.float64))
    v = np.asarray(values, dtype=np.float64)
    if len(book) == 1:
        return np.full(len(v), book[0], dtype=np.float32)
    hi = np.clip(np.searchsorted(book, v), 1, len(book) - 1)
    lo = hi - 1
    nearest = np.where(v - book[lo] <= book[hi] - v, lo, hi)
    return book[nearest].astype(np.float32)


def snap_flops(size: int, entries: int) -> float:
    """A binary search and a comparison per value."""
    return size * (math.log2(max(entries, 2)) + 2.0)


CODECS = ("none", "fp16", "qsgd", "topk", "fedcode")


def by_name(name: str, *, bits: int = 4, fraction: float = 0.05, clusters: int = 64) -> Codec:
    """The codec called ``name`` (one of :data:`CODECS`)."""
    checks.choice("codec", name, CODECS)
    if name == "fp16":
        return FP16()
    if name == "qsgd":
        return QSGD(bits)
    if name == "topk":
        return TopK(fraction)
    if name == "fedcode":
        return Codebook(clusters)
    return Identity()
