"""Every random stream of a run comes from here.

Streams are keyed by the run seed, a *purpose* name and optional indices
(usually a device id), through ``numpy.random.SeedSequence(seed, spawn_key=...)``.
Keys are fixed, not spawned in order, so adding a device, a purpose or a
metric never shifts another stream, and a device's stream does not depend on
which host holds it.
"""

from __future__ import annotations

import zlib

import numpy as np


def purpose_key(purpose: str) -> int:
    """The spawn-key word of a purpose name."""
    # crc32 is stable across processes and Python versions (unlike hash()).
    return zlib.crc32(purpose.encode("utf-8"))


def seed_sequence(seed: int, purpose: str, *index: int) -> np.random.SeedSequence:
    """The seed sequence of one stream: ``(seed, purpose, *index)``."""
    return np.random.SeedSequence(entropy=seed, spawn_key=(purpose_key(purpose), *index))


def generator(seed: int, purpose: str, *index: int) -> np.random.Generator:
    """A PCG64 generator for one stream."""
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, purpose, *index)))


def int_seed(seed: int, purpose: str, *index: int) -> int:
    """A 32-bit integer seed for libraries that take one (networkx generators)."""
    return int(seed_sequence(seed, purpose, *index).generate_state(1, np.uint32)[0])
