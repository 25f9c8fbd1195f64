"""Arrays the hosts already have, sent again as a reference.

Round after round, a synchronous protocol sends the hosts the same index
arrays: the devices of a step, who heard whom, which rows of which payload,
the sizes said in advance. Pickled whole, they were most of an execution's
input (about 220 kB a round for diffusion LMS on 1,000 nodes) and most of
what the driver and every host spent on it. Here the driver remembers the
arrays of its last :data:`KEEP` executions; an array equal to one of them
(same dtype, shape and content, checked) goes as its number, and the hosts,
which read every execution in the same order, keep the same numbers.

Hosts get such arrays read-only: one array object now serves several
executions, so a kernel writing into its request would change later ones
(it raises instead).
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

from netsim.content_cache import frozen as is_frozen

KEEP = 4  # executions an array is remembered for after its last use
MIN_BYTES = 512  # smaller arrays are cheaper to send than to look up


def _fingerprint(a: np.ndarray) -> tuple[Any, ...]:
    """A cheap key: dtype, shape and a few entries (equality is checked after)."""
    flat = a.reshape(-1)
    return a.dtype.str, a.shape, flat[:: max(1, flat.size // 8)].tobytes()


class _Pickler(pickle.Pickler):
    """Arrays through :meth:`SentArrays.reference` (its dispatch table sends
    only arrays there: every other object pickles at C speed)."""

    def __init__(self, file: io.BytesIO, memo: SentArrays) -> None:
        super().__init__(file, protocol=5)
        self.arrays = memo
        self.defining: np.ndarray | None = None
        self.dispatch_table = {np.ndarray: self._reduce}

    def _reduce(self, a: np.ndarray) -> Any:
        if a is self.defining or a.nbytes < MIN_BYTES or a.dtype.hasobject:
            return a.__reduce_ex__(5)
        return self.arrays.reference(a, self)


class SentArrays:
    """The driver's side: pickles an execution's input, sending arrays the
    hosts have by number."""

    def __init__(self) -> None:
        self.known: dict[tuple[Any, ...], tuple[int, np.ndarray]] = {}
        # frozen arrays (netsim.content_cache) cannot change: known by identity
        self.frozen: dict[int, tuple[int, np.ndarray]] = {}
        self.last_used: dict[int, int] = {}
        self.next_id = 0
        self.seq = 0

    def dumps(self, value: Any) -> bytes:
        """``value`` pickled with the arrays the hosts have as references,
        and the numbers they may forget."""
        self.seq += 1
        forget = [i for i, used in self.last_used.items() if self.seq - used > KEEP]
        if forget:
            gone = set(forget)
            self.known = {k: v for k, v in self.known.items() if v[0] not in gone}
            self.frozen = {k: v for k, v in self.frozen.items() if v[0] not in gone}
            for i in forget:
                del self.last_used[i]
        file = io.BytesIO()
        _Pickler(file, self).dump((value, forget))
        return file.getvalue()

    def reference(self, a: np.ndarray, pickler: _Pickler) -> tuple[Any, ...]:
        """How ``a`` is pickled: by its number when the hosts have it, else
        whole, with the number they will know it by."""
        frozen = is_frozen(a)
        hit = self.frozen.get(id(a)) if frozen else None
        if hit is not None and hit[1] is a:
            self.last_used[hit[0]] = self.seq
            return _recall, (hit[0],)
        key = _fingerprint(a)
        hit = self.known.get(key)
        if hit is not None and hit[1].tobytes() == a.tobytes():  # same dtype and shape
            self.last_used[hit[0]] = self.seq
            return _recall, (hit[0],)
        i, self.next_id = self.next_id, self.next_id + 1
        copy = a
        if not frozen:  # the driver may change its array after sending it
            copy = a.copy()
            copy.flags.writeable = False  # (read-only, it unpickles over bytes: frozen there)
        if frozen:
            self.frozen[id(a)] = (i, a)
        self.known[key] = (i, copy)
        self.last_used[i] = self.seq
        pickler.defining = copy
        return _define, (i, copy)


_receiving: dict[int, np.ndarray] = {}  # the arrays of the host reading now


def _define(i: int, a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    _receiving[i] = a
    return a


def _recall(i: int) -> np.ndarray:
    return _receiving[i]


class ReceivedArrays:
    """A host's side: the arrays the driver numbered, by number."""

    def __init__(self) -> None:
        self.arrays: dict[int, np.ndarray] = {}

    def loads(self, data: bytes) -> Any:
        global _receiving
        _receiving = self.arrays  # (a host reads its executions one at a time)
        value, forget = pickle.loads(data)
        for i in forget:
            self.arrays.pop(i, None)
        return value


__all__ = ["ReceivedArrays", "SentArrays"]
