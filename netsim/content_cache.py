"""Results computed from index arrays, kept for inputs of equal content.

A synchronous protocol hands its kernels and its dispatcher the same index
arrays round after round (who heard whom, which rows go where), as new
objects each time. What is computed from them (a sparse combination
matrix, an inbox's split over hosts) is kept with a copy of its inputs'
bytes, so that an equal input costs a byte comparison instead of the
computation. Results are shared between callers, hence read-only.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")


class ContentCache(Generic[T]):
    """``compute()`` for ``arrays``, or what it gave for arrays of the same
    dtype, shape and bytes (at most ``limit`` entries; all dropped when full,
    as a protocol that changes its inputs every round gains nothing here)."""

    def __init__(self, limit: int = 64) -> None:
        self.limit = limit
        self.entries: dict[Hashable, tuple[list[bytes], T]] = {}

    def get(self, tag: Hashable, arrays: Sequence[np.ndarray], compute: Callable[[], T]) -> T:
        said = [np.ascontiguousarray(a).tobytes() for a in arrays]
        # a cheap key: shapes, dtypes and a few bytes; equality is decided on all of them
        key = (
            tag,
            *(
                (a.dtype.str, a.shape, s[:8], s[len(s) // 2 :][:8], s[-8:])
                for a, s in zip(arrays, said, strict=True)
            ),
        )
        hit = self.entries.get(key)
        if hit is not None and hit[0] == said:
            return hit[1]
        value = compute()
        if len(self.entries) >= self.limit:
            self.entries.clear()
        self.entries[key] = (said, value)
        return value


def read_only(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """``arrays``, made read-only (results a cache shares)."""
    for a in arrays:
        a.flags.writeable = False
    return arrays
