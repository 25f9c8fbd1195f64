"""Checks of user-given values, each raising :class:`InputError` naming the field."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TypeVar

from netsim.errors import InputError

T = TypeVar("T")


def positive_int(name: str, value: object, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InputError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return value


def number(
    name: str,
    value: object,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number in the interval given by ``low``/``high``."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        expected = _range(low, high, low_open, high_open)
        raise InputError(f"{name}: expected a finite number {expected}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _range(low: float, high: float, low_open: bool, high_open: bool) -> str:
    if math.isinf(high):
        return f"{'>' if low_open else '>='} {low:g}" if math.isfinite(low) else ""
    if math.isinf(low):
        return f"{'<' if high_open else '<='} {high:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def choice(name: str, value: T, options: Iterable[T]) -> T:
    options = list(options)
    if value not in options:
        raise InputError(
            f"{name}: expected one of {', '.join(repr(o) for o in options)}, got {value!r}"
        )
    return value
