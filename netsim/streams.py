"""Many random streams at once: the streams of :func:`netsim.rng.generator`
for every device of a run, without a ``Generator`` object per device.

A ``numpy.random.Generator`` costs about 60 us to make (most of it in
``SeedSequence``) and about 860 bytes to keep: a million devices would take a
minute and close to a gigabyte per purpose. Here

- :func:`pcg64_states` computes the seeds of ``n`` streams at once
  (``SeedSequence``'s hash, vectorized over the stream index: O(n) numpy);
- :class:`Streams` keeps each stream as arrays (72 bytes) and draws
  from it through one shared bit generator whose state is swapped in and out;
- :class:`DeviceGenerators` makes a device's ``Generator`` only when a kernel
  asks for it.

Every stream is exactly the stream of ``rng.generator(seed, purpose, index)``:
same seed words (the SeedSequence algorithm of O'Neill's ``seed_seq_fe``, as
numpy implements it), same PCG64 state, hence the same draws (tests compare
them with numpy's own).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator
from typing import Any, SupportsIndex, overload

import numpy as np

from netsim import rng as rngs

_M32 = 0xFFFFFFFF
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R, _XSHIFT = 0xCA01F9DD, 0x4973F715, 16
_PCG_MULT = (2549297995355413924 << 64) + 4865540595714422341  # PCG's 128-bit multiplier
_MASK128 = (1 << 128) - 1
_POOL = 4  # SeedSequence's default pool size (32-bit words)


def _words(n: int) -> list[int]:
    """An integer as SeedSequence reads it: 32-bit words, least significant first."""
    if n < 0:
        raise ValueError("seeds and stream indices must be >= 0")
    out = []
    while n:
        out.append(n & _M32)
        n >>= 32
    return out or [0]


def seed_words(seed: int, purpose: str, index: np.ndarray) -> np.ndarray:
    """``rng.seed_sequence(seed, purpose, i).generate_state(4, np.uint64)`` for
    every ``i`` of ``index`` (each below 2**32), as an ``(n, 4)`` array."""
    index = np.asarray(index, dtype=np.int64)
    if len(index) and (index.min() < 0 or index.max() > _M32):
        raise ValueError("stream indices must be in [0, 2**32)")
    n = len(index)
    run = _words(int(seed))
    run += [0] * (_POOL - len(run))  # with a spawn key, the run entropy is padded to the pool
    entropy = [np.full(n, w, dtype=np.uint32) for w in run + _words(rngs.purpose_key(purpose))]
    entropy.append(index.astype(np.uint32))
    hash_const = _INIT_A

    def hashmix(value: np.ndarray) -> np.ndarray:
        nonlocal hash_const
        value = np.bitwise_xor(value, np.uint32(hash_const))
        hash_const = (hash_const * _MULT_A) & _M32
        value = np.multiply(value, np.uint32(hash_const), dtype=np.uint32)
        return np.bitwise_xor(value, np.right_shift(value, np.uint32(_XSHIFT)))

    def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        result: np.ndarray = np.uint32(_MIX_L) * x - np.uint32(_MIX_R) * y
        return np.bitwise_xor(result, np.right_shift(result, np.uint32(_XSHIFT)))

    with np.errstate(over="ignore"):
        pool = [hashmix(entropy[i]) for i in range(_POOL)]
        for i_src in range(_POOL):
            for i_dst in range(_POOL):
                if i_src != i_dst:
                    pool[i_dst] = mix(pool[i_dst], hashmix(pool[i_src]))
        for i_src in range(_POOL, len(entropy)):
            for i_dst in range(_POOL):
                pool[i_dst] = mix(pool[i_dst], hashmix(entropy[i_src]))
        hash_const = _INIT_B
        words = []
        for i in range(8):  # generate_state: 8 words of 32 bits, read as 4 of 64
            value = pool[i % _POOL] ^ np.uint32(hash_const)
            hash_const = (hash_const * _MULT_B) & _M32
            value = value * np.uint32(hash_const)
            words.append((value ^ (value >> np.uint32(_XSHIFT))).astype(np.uint64))
    out = np.empty((n, 4), dtype=np.uint64)
    for i in range(4):
        out[:, i] = words[2 * i] | (words[2 * i + 1] << np.uint64(32))
    return out


def pcg64_state(words: tuple[int, int, int, int]) -> tuple[int, int]:
    """PCG64's ``(state, inc)`` seeded by four 64-bit words (``pcg64_set_seed``:
    ``initstate = w0:w1``, ``initseq = w2:w3``, then PCG's ``srandom``)."""
    init_state = (words[0] << 64) | words[1]
    inc = ((((words[2] << 64) | words[3]) << 1) | 1) & _MASK128
    state = (inc + init_state) & _MASK128  # step from 0, add initstate
    return (state * _PCG_MULT + inc) & _MASK128, inc  # and step again


def _mul64(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 128-bit products ``a * b`` of 64-bit words, as (high, low) words."""
    m32, s32 = np.uint64(_M32), np.uint64(32)
    a0, a1, b0, b1 = a & m32, a >> s32, b & m32, b >> s32
    p00, p01, p10 = a0 * b0, a0 * b1, a1 * b0
    mid = (p00 >> s32) + (p01 & m32) + (p10 & m32)
    return a1 * b1 + (p01 >> s32) + (p10 >> s32) + (mid >> s32), (p00 & m32) | (mid << s32)


def pcg64_state_words(words: np.ndarray) -> np.ndarray:
    """:func:`pcg64_state` for each row of ``words`` ``(n, 4)``, vectorized:
    ``(n, 4)`` words state high, low, increment high, low."""
    w0, w1, w2, w3 = (words[:, k].astype(np.uint64) for k in range(4))
    one = np.uint64(1)
    inc_hi, inc_lo = (w2 << one) | (w3 >> np.uint64(63)), (w3 << one) | one

    def add(ah: np.ndarray, al: np.ndarray, bh: np.ndarray, bl: np.ndarray) -> tuple[Any, Any]:
        lo = al + bl
        return ah + bh + (lo < al).astype(np.uint64), lo

    s_hi, s_lo = add(inc_hi, inc_lo, w0, w1)
    mult_hi, mult_lo = np.uint64(_PCG_MULT >> 64), np.uint64(_PCG_MULT & _M64)
    hi, lo = _mul64(s_lo, np.full_like(s_lo, mult_lo))
    hi = hi + s_hi * mult_lo + s_lo * mult_hi  # the high words' products, mod 2**64
    s_hi, s_lo = add(hi, lo, inc_hi, inc_lo)
    return np.stack([s_hi, s_lo, inc_hi, inc_lo], axis=1)


def pcg64_states(seed: int, purpose: str, index: np.ndarray) -> list[tuple[int, int]]:
    """The PCG64 ``(state, inc)`` of ``rng.generator(seed, purpose, i)`` for each ``i``."""
    return [pcg64_state(tuple(w)) for w in seed_words(seed, purpose, index).tolist()]


def _state_dict(state: int, inc: int) -> Any:
    return {
        "bit_generator": "PCG64",
        "state": {"state": state, "inc": inc},
        "has_uint32": 0,
        "uinteger": 0,
    }


_M64 = (1 << 64) - 1


class Streams:
    """The streams ``rng.generator(seed, purpose, i)`` for ``i`` in ``index``,
    kept as arrays (their seed words, their PCG64 states and the half word a
    32-bit draw may have left: 72 bytes a stream, no Python object per stream)
    rather than ``Generator`` objects.
    :meth:`draw` runs a function on each stream in turn, through one shared
    ``Generator``, and keeps where each stream got to."""

    def __init__(self, seed: int, purpose: str, index: np.ndarray) -> None:
        n = len(index)
        self._words = seed_words(seed, purpose, index)  # (n, 4): what seeds each stream
        self._half = np.zeros((n, 2), dtype=np.uint32)  # has_uint32, uinteger
        self._started = np.zeros(n, dtype=bool)
        self._bits = np.random.PCG64(0)
        self._gen = np.random.Generator(self._bits)
        self._live = _live_views(self._bits)
        # state high, low, increment high, low at positions _at (as the bit generator lays them)
        self._at = np.arange(4) if self._live is None else self._live[1]
        self._state = np.zeros((n, 4), dtype=np.uint64)

    def __len__(self) -> int:
        return len(self._words)

    def _seeded(self, i: int) -> tuple[int, int]:
        w0, w1, w2, w3 = (int(x) for x in self._words[i])
        return pcg64_state((w0, w1, w2, w3))

    def _get(self, i: int) -> Any:
        if not self._started[i]:
            return _state_dict(*self._seeded(i))
        sh, sl, ih, il = (int(x) for x in self._state[i][self._at])
        out = _state_dict((sh << 64) | sl, (ih << 64) | il)
        out["has_uint32"], out["uinteger"] = (int(x) for x in self._half[i])
        return out

    def draw(
        self, fn: Callable[[int, np.random.Generator], None], which: np.ndarray | None = None
    ) -> None:
        """``fn(i, generator)`` for each stream ``i`` in order (or each of
        ``which``, in that order), ``generator`` being stream ``i`` where it was
        left. Costs a few us a stream besides the draws (about 15 us where the
        bit generator's state cannot be read in place)."""
        bits, gen, live, at = self._bits, self._gen, self._live, self._at
        state, half, started = self._state, self._half, self._started
        order = np.arange(len(self._words)) if which is None else np.asarray(which)
        fresh = order[~started[order]]
        if len(fresh):  # their seeded states, all at once
            seeded = np.empty((len(fresh), 4), dtype=np.uint64)
            seeded[:, at] = pcg64_state_words(self._words[fresh])
            state[fresh] = seeded
            started[fresh] = True
        for i in order.tolist():
            if live is None:
                bits.state = self._get(i)
            else:
                live[0][:] = state[i]
                live[2][:] = half[i]
            fn(i, gen)
            if live is not None:
                state[i] = live[0]
                half[i] = live[2]
            else:
                after = bits.state
                st, inc = after["state"]["state"], after["state"]["inc"]
                state[i] = (st >> 64, st & _M64, inc >> 64, inc & _M64)
                half[i] = (after["has_uint32"], after["uinteger"])

    def iter(self) -> Iterator[np.random.Generator]:
        """Each stream once, from where it was, as a ``Generator`` of its own."""
        for i in range(len(self._words)):
            bits = np.random.PCG64(0)
            bits.state = self._get(i)
            yield np.random.Generator(bits)


def _live_views(bits: np.random.PCG64) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Arrays over the memory of ``bits``'s state (swapping a stream in is then
    an array copy, not a dict of Python integers), found by writing known
    values through ``bits.state`` and looking for them: its 128-bit state and
    increment as 64-bit words (view, and the positions of state high, low,
    increment high, low in it), and ``has_uint32, uinteger``. ``None`` where
    they are not found (another layout): :meth:`Streams.draw` then goes
    through ``bits.state``."""
    try:
        address = bits.ctypes.state_address
        words = np.ctypeslib.as_array((ctypes.c_uint64 * 4).from_address(
            ctypes.c_void_p.from_address(address).value or 0
        ))  # fmt: skip
        half = np.ctypeslib.as_array((ctypes.c_uint32 * 2).from_address(address + 8))
        marks = [0x1111_2222_3333_4445, 0x5555_6666_7777_8889, 0x9999_AAAA_BBBB_CCCD, 0xDDDD]
        for k in range(2):  # two settings, so that no match is a coincidence
            m = [(v * (k + 3)) & _M64 | 1 for v in marks]
            bits.state = _state_dict((m[0] << 64) | m[1], (m[2] << 64) | m[3])
            state = bits.state
            state["has_uint32"], state["uinteger"] = 1, 12345 + k
            bits.state = state
            found = [np.flatnonzero(words == np.uint64(v)) for v in m]
            if any(len(f) != 1 for f in found) or list(half) != [1, 12345 + k]:
                return None
        where = np.array([int(f[0]) for f in found])
        if sorted(where.tolist()) != [0, 1, 2, 3]:
            return None
        return words, where, half
    except (AttributeError, ValueError, TypeError):
        return None


class DeviceGenerators(list[np.random.Generator]):
    """``rng.generator(seed, purpose, d)`` for each device ``d`` of ``devices``,
    made when a kernel first asks for it (``self[i]``: device ``devices[i]``'s).

    A read-only list: indexing, ``len`` and iteration (which makes them all).
    """

    def __init__(self, seed: int, purpose: str, devices: np.ndarray) -> None:
        super().__init__()
        self._seed, self._purpose = seed, purpose
        self._devices = np.asarray(devices, dtype=np.int64)
        self._made: dict[int, np.random.Generator] = {}

    def __len__(self) -> int:
        return len(self._devices)

    def _one(self, i: int) -> np.random.Generator:
        n = len(self._devices)
        if not -n <= i < n:
            raise IndexError(f"device position {i} out of range for {n} devices")
        i %= n
        g = self._made.get(i)
        if g is None:
            g = self._made[i] = rngs.generator(self._seed, self._purpose, int(self._devices[i]))
        return g

    @overload
    def __getitem__(self, i: SupportsIndex) -> np.random.Generator: ...

    @overload
    def __getitem__(self, i: slice) -> list[np.random.Generator]: ...

    def __getitem__(
        self, i: SupportsIndex | slice
    ) -> np.random.Generator | list[np.random.Generator]:
        if isinstance(i, slice):
            return [self._one(k) for k in range(len(self._devices))[i]]
        return self._one(int(i))

    def __iter__(self) -> Iterator[np.random.Generator]:
        return (self._one(i) for i in range(len(self._devices)))

    def __bool__(self) -> bool:
        return len(self._devices) > 0
