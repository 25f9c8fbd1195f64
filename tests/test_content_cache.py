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
from netsim.content_cache import ContentCache, Interned, frozen, read_only
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


def test_frozen_inputs_are_known_by_identity_without_a_copy_of_their_bytes(monkeypatch) -> None:
    cache: ContentCache[int] = ContentCache()
    (a,) = read_only(np.arange(1000))
    compared: list[int] = []
    by_content = cache._by_content
    monkeypatch.setattr(cache, "_by_content", lambda *args: compared.append(1) or by_content(*args))
    assert cache.get("t", [a], lambda: 1) == 1
    assert cache.get("t", [a], lambda: 2) == 1  # the same frozen object: by identity
    assert compared == [] and cache.entries == {}  # no bytes kept for it
    (equal,) = read_only(np.arange(1000))  # another frozen object: computed again
    assert cache.get("t", [equal], lambda: 3) == 3
    writable = np.arange(1000)  # writable: by content, so a change in place is seen
    assert cache.get("t", [writable], lambda: 4) == 4
    assert cache.get("t", [writable], lambda: 5) == 4
    writable[0] = 7
    assert cache.get("t", [writable], lambda: 6) == 6
    assert compared == [1, 1, 1]


def test_kept_bytes_stay_within_the_budget() -> None:
    """Inputs that change every round (a large network under churn) do not
    pile up: everything is dropped when the next entry would pass the budget."""
    cache: ContentCache[np.ndarray] = ContentCache(max_bytes=100_000)
    for i in range(20):
        (live,) = read_only(np.arange(i, i + 2000))  # 16 kB of input, 16 kB of value
        cache.get("t", [live], lambda live=live: live * 2)
        assert cache.nbytes <= 100_000
    assert len(cache.by_identity) <= 3
    huge = np.zeros(50_000)  # one entry past the budget is kept, alone
    cache.get("t", [huge], lambda: huge.copy())
    assert sum(len(b) for b in cache.entries.values()) + len(cache.by_identity) == 1


def test_read_only_copies_views_so_results_cannot_change() -> None:
    base = np.arange(10)
    (view,) = read_only(base[2:5])
    base[3] = 99
    assert view.tolist() == [2, 3, 4] and frozen(view)
    with pytest.raises(ValueError):
        view[0] = 1
    unpickled = np.frombuffer(b"\x01\x00\x00\x00", dtype=np.int32)  # over immutable bytes
    assert frozen(unpickled) and not frozen(base)


def test_interned_arrays_come_back_as_the_same_object_until_they_change() -> None:
    interned = Interned()
    mine = np.array([3, 1, 2])
    first = interned("x", mine)
    assert first is not mine and mine.flags.writeable  # the caller's array is left alone
    assert frozen(first) and first.tolist() == [3, 1, 2]
    assert interned("x", np.array([3, 1, 2])) is first
    changed = interned("x", np.array([3, 1, 4]))
    assert changed is not first and changed.tolist() == [3, 1, 4]
    assert interned("y", np.array([3, 1, 4])) is not changed  # names apart
    fresh = np.array([5, 6])
    assert interned("z", fresh, fresh=True) is fresh and frozen(fresh)


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
