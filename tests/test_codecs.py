"""Codecs and aggregation as pure functions: exact sizes, what survives the
round trip, and FedCode's schedule and pooled-codebook aggregation on small
hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from algorithms.federated import FP16, QSGD, Codebook, FedCodeSchedule, Identity, TopK, codecs
from algorithms.federated import aggregation as agg

RNG = np.random.default_rng(0)
X = RNG.normal(0, 0.1, 10_001).astype(np.float32)


@given(st.integers(1, 20), st.lists(st.integers(0, 2**20), min_size=0, max_size=200))
def test_bit_packing_round_trips_in_the_fewest_bytes(bits: int, raw: list[int]) -> None:
    values = np.array([v % (2**bits) for v in raw], dtype=np.int64)
    packed = codecs.pack_bits(values, bits)
    assert len(packed) == math.ceil(len(values) * bits / 8)
    np.testing.assert_array_equal(codecs.unpack_bits(packed, bits, len(values)), values)


@pytest.mark.parametrize(
    ("codec", "expected"),
    [
        (Identity(), 4 * 10_001),
        (FP16(), 2 * 10_001),
        (QSGD(4), math.ceil(10_001 * 4 / 8) + math.ceil(10_001 / 8) + 4 * math.ceil(10_001 / 512)),
        (TopK(0.05), math.ceil(501 * 14 / 8) + 4 * 501),  # 501 entries, 14-bit indices
        (Codebook(64), 4 * 64 + math.ceil(10_001 * 6 / 8)),
    ],
    ids=lambda c: getattr(c, "name", ""),
)
def test_message_size_is_what_the_message_carries(codec: codecs.Codec, expected: int) -> None:
    message, _, _ = codec.encode(X, None, np.random.default_rng(1), "model")
    assert message.nbytes == expected
    assert message.nbytes == sum(a.nbytes for a in message.arrays)


@pytest.mark.parametrize("size", [1, 7, 512, 513, 10_001])
@pytest.mark.parametrize(
    "codec", [Identity(), FP16(), QSGD(4), QSGD(3, bucket=100), TopK(0.05), TopK(0.3)], ids=str
)
def test_costs_said_in_advance_are_those_of_encoding(codec: codecs.Codec, size: int) -> None:
    """What the driver uses before a client encodes (so that it need not wait
    for the host) is what encoding a vector of any values gives."""
    known = codec.known_cost(size, "model")
    assert known is not None
    for seed in (0, 1):
        x = np.random.default_rng(seed).normal(0, 3, size).astype(np.float32)
        message, _, flops = codec.encode(x, None, np.random.default_rng(seed), "model")
        assert (message.nbytes, flops) == known


def test_codebook_costs_are_not_said_in_advance() -> None:
    assert Codebook(64).known_cost(1000, "model") is None  # k-means iterations vary
    assert Identity().known_cost(1000, "codebook") is None


def test_lossless_and_half_precision_round_trips() -> None:
    msg, _, _ = Identity().encode(X, None, RNG, "model")
    np.testing.assert_array_equal(Identity().decode(msg, None), X)
    msg, _, flops = FP16().encode(X, None, RNG, "model")
    np.testing.assert_array_equal(FP16().decode(msg, None), X.astype(np.float16).astype(np.float32))
    assert flops == len(X)


def test_qsgd_is_unbiased_and_bounded() -> None:
    """E[Q(x)] = x; each entry lies on the grid between its neighbours."""
    q = QSGD(bits=2, bucket=100)
    x = X[:1000]
    draws = np.array(
        [
            q.decode(q.encode(x, None, np.random.default_rng(s), "model")[0], None)
            for s in range(400)
        ]
    )
    norms = np.sqrt(np.bincount(np.arange(1000) // 100, weights=x.astype(np.float64) ** 2))
    step = norms[np.arange(1000) // 100] / 3
    assert np.all(np.abs(draws - x) <= step * (1 + 1e-5))
    # the mean of 400 draws is within 4 standard errors of x, entry by entry
    stderr = step / 2 / np.sqrt(400)
    assert np.all(np.abs(draws.mean(axis=0) - x) <= 4 * stderr + 1e-7)


def test_topk_keeps_what_it_does_not_send() -> None:
    """Error feedback: sent + kept == input + previous error, every round."""
    k = TopK(0.1)
    memory = None
    total_in, total_sent = np.zeros(len(X)), np.zeros(len(X))
    for r in range(5):
        x = X * (r + 1)
        msg, new_memory, _ = k.encode(x, memory, RNG, "model")
        sent = k.decode(msg, None)
        assert np.count_nonzero(sent) <= math.ceil(0.1 * len(X))
        previous = 0 if memory is None else memory
        np.testing.assert_allclose(sent + new_memory, x + previous, rtol=1e-6, atol=1e-7)
        total_in += x
        total_sent += sent
        memory = new_memory
    np.testing.assert_allclose(total_sent + memory, total_in, rtol=1e-5, atol=1e-5)


def test_codebook_quantizes_to_sorted_centroids() -> None:
    x = np.concatenate([np.full(50, -1.0), np.full(30, 0.5), np.full(20, 2.0)]) + RNG.normal(
        0, 1e-3, 100
    )
    book = Codebook(3)
    msg, _, flops = book.encode(x, None, np.random.default_rng(0), "model")
    centroids = msg.arrays[0]
    assert np.all(np.diff(centroids) > 0)
    np.testing.assert_allclose(centroids, [-1.0, 0.5, 2.0], atol=1e-3)
    np.testing.assert_allclose(book.decode(msg, None), x, atol=5e-3)
    assert flops > 0
    alone, _, _ = book.encode(x, None, np.random.default_rng(0), "codebook")
    assert alone.nbytes == 3 * 4  # the codebook alone
    mine = np.array([-0.7, 0.1, 0.3, 1.9, 5.0])
    np.testing.assert_allclose(book.decode(alone, mine), [-1.0, 0.5, 0.5, 2.0, 2.0], atol=1e-3)


def test_snap_picks_the_nearest_entry() -> None:
    book = np.array([0.0, 1.0, 3.0])
    got = codecs.snap(np.array([-5.0, 0.4, 0.6, 1.9, 2.1, 9.0]), book)
    np.testing.assert_array_equal(got, [0.0, 0.0, 1.0, 1.0, 3.0, 3.0])


def test_pooled_codebook_aggregation() -> None:
    """Two clients' codebooks pooled: each server weight snaps to the nearest pooled value."""
    model = np.array([0.12, 0.38, 0.61, -0.9])
    got = agg.pooled_codebook_snap(model, [np.array([0.1, 0.6]), np.array([0.4, -1.0])])
    np.testing.assert_allclose(got, [0.1, 0.4, 0.6, -1.0])


def test_weighted_average_and_buffered_step() -> None:
    v = np.array([[1.0, 2.0], [3.0, 6.0]])
    np.testing.assert_allclose(agg.weighted_average(v, np.array([1.0, 3.0])), [2.5, 5.0])
    step = agg.buffered_step(np.array([1.0, 1.0]), v, np.array([1.0, 0.5]), server_lr=2.0)
    np.testing.assert_allclose(step, [1 + 2 * (1 + 1.5) / 2, 1 + 2 * (2 + 3) / 2])
    assert agg.staleness_weight(3) == 0.5


def test_fedcode_schedule_follows_the_paper() -> None:
    """start_rnd 2, f1 5, f2 2: the server sends whole models in rounds 1, 2 and
    every fifth; clients in round 1 and every even round."""
    s = FedCodeSchedule(start_rnd=2, f1=5, f2=2)
    down = [r for r in range(1, 21) if s.down(r) == "model"]
    up = [r for r in range(1, 21) if s.up(r) == "model"]
    assert down == [1, 2, 5, 10, 15, 20]
    assert up == [1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20]


def test_codecs_that_encode_updates_refuse_other_messages() -> None:
    with pytest.raises(ValueError, match="whole vectors only"):
        QSGD().encode(X, None, RNG, "codebook")
    with pytest.raises(ValueError, match="needs the receiver's own weights"):
        book = Codebook(4)
        book.decode(book.encode(X, None, RNG, "codebook")[0], None)
