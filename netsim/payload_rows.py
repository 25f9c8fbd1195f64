"""Rows of several payload arrays gathered into one: how a host assembles
an inbox's contents from its own payloads and other hosts' exports
(:meth:`netsim.kernel.RemotePayload.resolve`), and how the driver stacks
messages of different calls (:func:`netsim.dispatch.stack_sources`).
Object arrays (ragged or encoded payloads) stay object arrays."""

from __future__ import annotations

import numpy as np


def take_rows(located: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """``concatenate_rows([array[rows] for array, rows in located])``, written
    straight into one array where the arrays share a dtype and row shape."""
    if len(located) == 1:
        array, rows = located[0]
        return array[rows]
    first = located[0][0]
    if first.dtype == object or any(
        a.dtype != first.dtype or a.shape[1:] != first.shape[1:] for a, _ in located
    ):
        return concatenate_rows([a[rows] for a, rows in located])
    out = np.empty((sum(len(rows) for _, rows in located), *first.shape[1:]), dtype=first.dtype)
    offset = 0
    for array, rows in located:
        if len(rows) and not (rows.min() >= 0 and rows.max() < len(array)):
            raise IndexError(f"payload rows out of range 0..{len(array) - 1}")
        # (in range, as checked: mode="clip" only spares numpy a buffer)
        np.take(array, rows, axis=0, out=out[offset : offset + len(rows)], mode="clip")
        offset += len(rows)
    return out


def concatenate_rows(pieces: list[np.ndarray]) -> np.ndarray:
    """Rows of several payload arrays as one (object arrays stay object arrays)."""
    if len(pieces) == 1:
        return pieces[0]
    if any(p.dtype == object for p in pieces):
        out = np.empty(sum(len(p) for p in pieces), dtype=object)
        offset = 0
        for p in pieces:
            out[offset : offset + len(p)] = list(p)
            offset += len(p)
        return out
    return np.concatenate(pieces)
