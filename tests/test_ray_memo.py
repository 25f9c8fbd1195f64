"""Arrays sent again as references (:mod:`actors.ray_memo`): a host reads
exactly what the driver sent, repeats cost a few bytes, and neither side
keeps arrays past their use."""

from __future__ import annotations

import numpy as np
import pytest

from actors.ray_memo import KEEP, MIN_BYTES, ReceivedArrays, SentArrays


def _pair() -> tuple[SentArrays, ReceivedArrays]:
    return SentArrays(), ReceivedArrays()


def test_a_repeated_array_goes_as_a_reference_and_arrives_equal() -> None:
    sent, received = _pair()
    rows = np.arange(3000, dtype=np.int64)
    first = sent.dumps({"rows": rows, "step": 1})
    again = sent.dumps({"rows": rows.copy(), "step": 2})  # equal content, another object
    assert len(again) < len(first) / 20
    one, two = received.loads(first), received.loads(again)
    assert two["step"] == 2 and np.array_equal(two["rows"], rows)
    assert two["rows"] is one["rows"]  # one object serves both executions ...
    with pytest.raises(ValueError, match="read-only"):
        two["rows"][0] = 7  # ... so a kernel cannot change a later one's input


def test_an_array_changed_after_it_was_sent_is_sent_again() -> None:
    sent, received = _pair()
    rows = np.arange(1000, dtype=np.int64)
    received.loads(sent.dumps(rows))
    rows[::2] = -1  # every entry the fingerprint samples changes, and more
    assert np.array_equal(received.loads(sent.dumps(rows)), rows)
    rows[1] = 12345  # an entry the fingerprint does not sample
    assert np.array_equal(received.loads(sent.dumps(rows)), rows)


def test_arrays_alike_but_for_dtype_or_shape_stay_apart() -> None:
    sent, received = _pair()
    a = np.zeros(1024, dtype=np.int64)
    for value in (a, a.astype(np.float64), a.reshape(32, 32), a.view(np.uint64)):
        got = received.loads(sent.dumps(value))
        assert got.dtype == value.dtype and got.shape == value.shape
        assert np.array_equal(got, value)


def test_arrays_not_used_for_a_while_are_forgotten_on_both_sides() -> None:
    sent, received = _pair()
    old = np.arange(2000, dtype=np.int64)
    received.loads(sent.dumps(old))
    for k in range(KEEP + 1):
        received.loads(sent.dumps(np.full(2000, k, dtype=np.int64)))
    assert len(sent.known) == len(received.arrays) <= KEEP + 1
    assert not any(np.array_equal(a, old) for a in received.arrays.values())
    back = sent.dumps(old)  # sent whole again, under a new number
    assert np.array_equal(received.loads(back), old)
    assert len(back) > old.nbytes


def test_small_and_object_arrays_go_as_they_are() -> None:
    sent, received = _pair()
    small = np.arange(4)
    assert MIN_BYTES > 40 * 8
    objects = np.empty(200, dtype=object)
    objects[:] = [np.arange(k % 40) for k in range(200)]  # rows below MIN_BYTES each
    value = received.loads(sent.dumps((small, objects)))
    assert np.array_equal(value[0], small) and value[0].flags.writeable
    assert all(np.array_equal(x, y) for x, y in zip(value[1], objects, strict=True))
    assert not sent.known


def test_a_read_only_array_is_known_by_identity_a_writable_view_is_not() -> None:
    sent, received = _pair()
    frozen = np.arange(1000, dtype=np.int64)
    frozen.flags.writeable = False
    base = np.arange(1000, dtype=np.int64)
    view = base[:]
    view.flags.writeable = False  # read-only, but its base can still change
    first = received.loads(sent.dumps((frozen, view)))
    assert len(sent.frozen) == 1  # the view is not trusted by identity
    base[5] = -1
    got = received.loads(sent.dumps((frozen, view)))
    assert np.array_equal(got[1], view) and got[1][5] == -1
    assert got[0] is first[0] and np.array_equal(got[0], frozen)
