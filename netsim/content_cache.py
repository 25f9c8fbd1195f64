"""Results computed from index arrays, kept for inputs of equal content.

A synchronous protocol hands its kernels and its dispatcher the same index
arrays round after round (who heard whom, which rows go where). What is
computed from them (a sparse combination matrix, an inbox's split over
hosts) is kept with a copy of its inputs' bytes, so that an equal input
costs a byte comparison instead of the computation. Results are shared
between callers, hence read-only.

Cheaper still is no comparison at all: an array that is **frozen**
(read-only, over memory nobody writes: its own, or immutable bytes) cannot
change, so the same frozen object given again is known by identity.
:class:`Interned` hands out such objects: equal arrays made anew each round
(the nodes that are up, the sizes said in advance, an inbox's indices) come
back as the object of the round before, and every cache down the line (here,
:mod:`actors.ray_memo`, a host's lookups) then finds them by identity; no
copy of their bytes is kept. Each cache is bounded in entries and bytes, so
inputs that change every round (a large network under churn) do not pile up.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")


def frozen(a: np.ndarray) -> bool:
    """Whether ``a`` can no longer change: read-only, over its own memory,
    over immutable bytes (an array read from a pickle) or a view of a frozen
    array."""
    if a.flags.writeable:
        return False
    base = a.base
    return (
        base is None or isinstance(base, bytes) or (isinstance(base, np.ndarray) and frozen(base))
    )


class ContentCache(Generic[T]):
    """``compute()`` for ``arrays``, or what it gave for the same frozen
    arrays (by identity) or for arrays of the same dtype, shape and bytes
    (inputs not all frozen: a copy of their bytes is kept). At most
    ``limit`` entries and about ``max_bytes`` of kept inputs and values: all
    are dropped when full, as a protocol that changes its inputs every round
    gains nothing here (one entry larger than that is kept alone)."""

    def __init__(self, limit: int = 64, max_bytes: int = 256 << 20) -> None:
        self.limit = limit
        self.max_bytes = max_bytes
        self.size = 0
        self.nbytes = 0  # of the kept inputs and values
        # by tag, dtypes and shapes: the bytes of each entry's inputs, and its value
        self.entries: dict[Hashable, list[tuple[list[bytes], T]]] = {}
        # by tag and the ids of frozen inputs: those inputs (kept alive), and the value
        self.by_identity: dict[Hashable, tuple[Sequence[np.ndarray], T]] = {}

    def get(self, tag: Hashable, arrays: Sequence[np.ndarray], compute: Callable[[], T]) -> T:
        if not all(map(frozen, arrays)):
            return self._by_content(tag, arrays, compute)
        ids = (tag, *map(id, arrays))
        hit = self.by_identity.get(ids)
        if hit is not None and all(map(operator.is_, hit[0], arrays)):
            return hit[1]
        value = compute()
        self._admit(sum(a.nbytes for a in arrays) + _nbytes(value))
        self.by_identity[ids] = (tuple(arrays), value)
        return value

    def _by_content(
        self, tag: Hashable, arrays: Sequence[np.ndarray], compute: Callable[[], T]
    ) -> T:
        said = [np.ascontiguousarray(a).tobytes() for a in arrays]
        key = (tag, *((a.dtype.str, a.shape) for a in arrays))
        for inputs, value in self.entries.get(key, []):  # unequal bytes differ early, as a rule
            if inputs == said:
                return value
        value = compute()
        self._admit(sum(map(len, said)) + _nbytes(value))
        self.entries.setdefault(key, []).append((said, value))
        return value

    def _admit(self, nbytes: int) -> None:
        """Make room for an entry of ``nbytes``: drop everything when full."""
        if self.size >= self.limit or self.nbytes + nbytes > self.max_bytes:
            self.entries, self.by_identity = {}, {}
            self.size = self.nbytes = 0
        self.size += 1
        self.nbytes += nbytes


def _nbytes(value: object) -> int:
    """Bytes of the arrays in a cached value (an array or a tuple of them;
    anything else counts as nothing)."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, tuple):
        return sum(_nbytes(v) for v in value)
    return 0


def read_only(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """``arrays``, frozen (results a cache shares): read-only, and copied
    first where they are views of other arrays."""
    out = []
    for a in arrays:
        if not frozen(a):
            if not a.flags.owndata:
                a = a.copy()
            a.flags.writeable = False
        out.append(a)
    return tuple(out)


def same(a: np.ndarray, b: np.ndarray | None) -> bool:
    """``a`` and ``b`` hold the same dtype, shape and content."""
    if b is None:
        return False
    if a is b:
        return True
    # (bytes compared: faster than np.array_equal at the sizes of index arrays)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


class Interned:
    """Arrays made anew that equal the last one given under the same name
    come back as that one, frozen: ``interned(name, a)``. A new value is
    kept as a frozen copy, or frozen in place when ``fresh`` (an array the
    caller just made and no one else holds)."""

    def __init__(self) -> None:
        self.last: dict[Hashable, np.ndarray] = {}

    def __call__(self, name: Hashable, a: np.ndarray, fresh: bool = False) -> np.ndarray:
        kept = self.last.get(name)
        if kept is not None and same(a, kept):
            return kept
        if not frozen(a):  # else a copy: the caller may still write into its array
            a = a if fresh and a.flags.owndata else a.copy()
            a.flags.writeable = False
        self.last[name] = a
        return a
