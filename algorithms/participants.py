"""How participants differ, set as node attributes of the topology (so that
every algorithm, and every host, sees the same participants):

- ``data_weight`` (number > 0): a client's share of the training pool,
  relative to the others' (quantity skew; 1 for all by default). Given on any
  node, the pool is cut in these proportions, labels mixed (the data spec's
  partition must be ``iid``);
- ``label_noise`` (in [0, 1]): the fraction of a client's examples whose label
  is replaced by a uniformly drawn one, seeded per client;
- ``free_rider``: ``copy`` returns the model it received without training,
  ``noise`` returns it plus Gaussian noise (``FREE_RIDER_NOISE`` per
  parameter); absent, empty or ``no``: an honest client. A free rider still
  claims its examples when the server weighs updates.

These are ground truth for the experimenter: an algorithm that estimates
contributions (Aequa) must not read them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from netsim.errors import InputError

DATA_WEIGHT, LABEL_NOISE, FREE_RIDER = "data_weight", "label_noise", "free_rider"
FREE_RIDERS = ("copy", "noise")
FREE_RIDER_NOISE = 0.05  # standard deviation per parameter


@dataclass(frozen=True)
class Participant:
    data_weight: float = 1.0
    label_noise: float = 0.0
    free_rider: str = ""  # "", "copy" or "noise"


def _value(nodes: Mapping[str, np.ndarray], name: str, k: int) -> object:
    values = nodes.get(name)
    return None if values is None else values[k]


def _number(k: int, name: str, value: object, default: float, low: float, high: float) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise InputError(f"topology node {k}: attribute {name!r} must be a number, got {value!r}")
    x = float(value)
    low_ok = x > low if name == DATA_WEIGHT else x >= low
    if not (low_ok and x <= high):
        bounds = "> 0" if name == DATA_WEIGHT else f"in [{low:g}, {high:g}]"
        raise InputError(f"topology node {k}: attribute {name!r} must be {bounds}, got {value!r}")
    return x


def participants(
    nodes: Mapping[str, np.ndarray], clients: Sequence[int] | np.ndarray
) -> dict[int, Participant]:
    """Each client's settings, from the node attributes (InputError naming
    the node and attribute for a bad value)."""
    out = {}
    for k in (int(c) for c in clients):
        rider = _value(nodes, FREE_RIDER, k)
        if rider in (None, "", "no") or (isinstance(rider, float) and math.isnan(rider)):
            rider = ""
        elif rider not in FREE_RIDERS:
            raise InputError(
                f"topology node {k}: attribute {FREE_RIDER!r} must be one of "
                f"{', '.join(FREE_RIDERS)} (or absent), got {rider!r}"
            )
        out[k] = Participant(
            _number(k, DATA_WEIGHT, _value(nodes, DATA_WEIGHT, k), 1.0, 0.0, math.inf),
            _number(k, LABEL_NOISE, _value(nodes, LABEL_NOISE, k), 0.0, 0.0, 1.0),
            str(rider),
        )
    return out


def data_weights(people: Mapping[int, Participant], clients: Sequence[int]) -> np.ndarray | None:
    """Clients' data weights in ``clients`` order; ``None`` when all are equal
    to the default (the data spec's own partition applies)."""
    weights = np.array([people[int(c)].data_weight for c in clients], dtype=float)
    return None if np.all(weights == 1.0) else weights


def noisy_labels(
    y: np.ndarray, fraction: float, classes: int, g: np.random.Generator
) -> np.ndarray:
    """``y`` with ``fraction`` of its labels (chosen at random) redrawn uniformly."""
    if fraction <= 0 or len(y) == 0:
        return y
    out = y.copy()
    flip = g.random(len(y)) < fraction
    out[flip] = g.integers(0, classes, int(flip.sum()))
    return out
