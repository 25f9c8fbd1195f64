"""Splitting an inbox over hosts (:meth:`netsim.kernel.Inbox.select`): each
receiver keeps exactly its messages, whether the index arrays are computed
or reused from an earlier split of equal inputs; remote payload rows keep
their sources."""

from __future__ import annotations

import numpy as np
import pytest

from netsim.kernel import Inbox, PayloadPart, RemotePayload
from netsim.payload_rows import take_rows


def _inbox(rng: np.random.Generator, receivers: int, senders: int) -> Inbox:
    counts = rng.integers(0, 5, receivers)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    m = int(indptr[-1])
    row = rng.integers(0, senders, m)
    payload = rng.standard_normal((senders, 3))
    return Inbox(indptr, rng.integers(0, 99, m), rng.integers(0, 999, m), row, payload)


def _messages(inbox: Inbox, i: int) -> list[tuple[int, int, tuple[float, ...]]]:
    lo, hi = inbox.indptr[i], inbox.indptr[i + 1]
    return [
        (int(inbox.sender[j]), int(inbox.link[j]), tuple(inbox.payload[inbox.row[j]]))
        for j in range(lo, hi)
    ]


@pytest.mark.parametrize("seed", range(4))
def test_each_selected_receiver_keeps_exactly_its_messages(seed: int) -> None:
    rng = np.random.default_rng(seed)
    inbox = _inbox(rng, receivers=40, senders=30)
    for _ in range(3):  # the same split again: index arrays reused, same answer
        positions = np.sort(rng.choice(40, 17, replace=False))
        for again in range(2):
            part = inbox.select(positions)
            assert len(part.payload) == len(np.unique(part.row))  # only the rows used
            for k, i in enumerate(positions):
                assert _messages(part, k) == _messages(inbox, int(i)), again


def test_an_inbox_changed_in_place_is_selected_anew() -> None:
    rng = np.random.default_rng(7)
    inbox = _inbox(rng, receivers=20, senders=10)
    positions = np.arange(0, 20, 2)
    inbox.select(positions)
    inbox.sender[:] = rng.integers(100, 200, len(inbox.sender))  # the same arrays, new content
    part = inbox.select(positions)
    for k, i in enumerate(positions):
        assert _messages(part, k) == _messages(inbox, int(i))


def test_remote_rows_keep_their_parts_in_either_order() -> None:
    parts = tuple(PayloadPart(f"host{h}", 0, "x", np.arange(4) + 10 * h) for h in range(3))
    payload = RemotePayload(parts)
    ascending = payload[np.array([1, 4, 5, 11])]
    assert [p.source for p in ascending.parts] == ["host0", "host1", "host2"]
    assert [p.rows.tolist() for p in ascending.parts] == [[1], [10, 11], [23]]
    mixed = payload[np.array([5, 1, 4, 0])]
    assert [p.rows.tolist() for p in mixed.parts] == [[1, 0], [11, 10]]


def test_payload_rows_from_several_arrays_are_those_of_each_in_turn() -> None:
    """:func:`netsim.payload_rows.take_rows` (how a host resolves remote rows): the
    rows of each array in turn, whatever their dtypes; rows out of range raise."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((6, 3)), rng.standard_normal((4, 3))
    ra, rb = np.array([5, 0, 2]), np.array([3, 3])
    got = take_rows([(a, ra), (b, rb)])
    np.testing.assert_array_equal(got, np.concatenate([a[ra], b[rb]]))
    mixed = take_rows([(a, ra), (b.astype(np.float32), rb)])  # dtypes apart: concatenated
    np.testing.assert_array_equal(mixed, np.concatenate([a[ra], b[rb].astype(np.float32)]))
    objects = np.empty(2, dtype=object)
    objects[:] = [b"x", b"yz"]
    assert take_rows([(objects, np.array([1])), (objects, np.array([0]))]).tolist() == [
        b"yz",
        b"x",
    ]
    with pytest.raises(IndexError):
        take_rows([(a, np.array([6])), (b, rb)])
