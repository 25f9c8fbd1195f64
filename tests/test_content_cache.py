"""Results kept for inputs of equal content (:mod:`netsim.content_cache`), and
the combination step that keeps its sparse matrix there
(:func:`algorithms.combine.combine`): an equal input reuses the result, any
change of content, dtype or shape computes it anew, and a combination is
always the re-normalized weighted sum its docstring states."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from algorithms.combine import combine
from netsim.content_cache import ContentCache
from netsim.kernel import Inbox


def test_equal_content_reuses_and_any_change_recomputes() -> None:
    cache: ContentCache[int] = ContentCache()
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    a = np.arange(1000, dtype=np.int64)
    assert cache.get("t", [a], compute) == 1
    assert cache.get("t", [a.copy()], compute) == 1  # a new object, equal bytes
    changed = a.copy()
    changed[345] = -1  # an entry the cheap key does not look at
    assert cache.get("t", [changed], compute) == 2
    assert cache.get("t", [a.astype(np.int32)], compute) == 3  # dtype apart
    assert cache.get("t", [a.reshape(10, 100)], compute) == 4  # shape apart
    assert cache.get("other", [a], compute) == 5  # tag apart
    assert cache.get("t", [changed.copy()], compute) == 2


def test_inputs_of_one_shape_are_kept_side_by_side() -> None:
    """Two hosts' parts of equal size, asked for in turn, are each computed once."""
    cache: ContentCache[int] = ContentCache()
    calls: list[int] = []
    parts = [np.arange(500), np.arange(500, 1000)]

    def compute(k: int) -> int:
        calls.append(k)
        return k

    for _ in range(3):
        for k, part in enumerate(parts):
            assert cache.get("t", [part.copy()], functools.partial(compute, k)) == k
    assert calls == [0, 1]


def test_a_full_cache_starts_again() -> None:
    cache: ContentCache[int] = ContentCache(limit=2)
    for i in range(5):
        cache.get("t", [np.array([i])], functools.partial(int, i))
    assert cache.size <= 2
    assert sum(len(bucket) for bucket in cache.entries.values()) <= 2


def _expected(own: np.ndarray, sw: np.ndarray, inbox: Inbox, lw: np.ndarray) -> np.ndarray:
    """The combination, receiver by receiver, as the module docstring states it."""
    out = own.copy()
    for k in range(len(own)):
        lo, hi = inbox.indptr[k], inbox.indptr[k + 1]
        weights = lw[inbox.link[lo:hi]]
        total = sw[k] * own[k] + weights @ inbox.payload[inbox.row[lo:hi]]
        norm = sw[k] + weights.sum()
        if norm > 0:
            out[k] = total / norm
    return out


def _inbox(rng: np.random.Generator, receivers: int, rows: int, links: int) -> Inbox:
    counts = rng.integers(0, 4, receivers)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    m = int(indptr[-1])
    return Inbox(
        indptr,
        rng.integers(0, 99, m),
        rng.integers(0, links, m),
        rng.integers(0, rows, m),
        rng.standard_normal((rows, 3)),
    )


@pytest.mark.parametrize("seed", range(3))
def test_combine_follows_its_inputs_round_after_round(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lw = rng.random(50)
    sw = rng.random(20)
    sw[:3] = 0.0  # some receivers give themselves no weight (kept where they heard nobody)
    inbox = _inbox(rng, 20, 15, 50)
    own = rng.standard_normal((20, 3))
    for _ in range(3):  # equal inputs: the kept matrix, the same answer
        np.testing.assert_allclose(combine(own, sw, inbox, lw), _expected(own, sw, inbox, lw))
    # the same arrays changed in place: the result follows them
    inbox.row[:] = rng.integers(0, 15, len(inbox.row))
    lw *= 2.0
    inbox.payload[:] = rng.standard_normal(inbox.payload.shape)
    out = np.empty_like(own)
    got = combine(own, sw, inbox, lw, out=out)
    assert got is out
    np.testing.assert_allclose(got, _expected(own, sw, inbox, lw))
