"""Topologies: graph generators, files, attribute models and combination weights.

>>> import topologies
>>> g = topologies.build("ring", 8, seed=1)
>>> topologies.assign_devices(g, "mixed", seed=1)
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from netsim.errors import InputError
from topologies.attributes import (
    DEVICE_ATTRIBUTES,
    LINK_ATTRIBUTES,
    PROFILES,
    DeviceClass,
    assign_devices,
    assign_links,
)
from topologies.files import load_graph
from topologies.generators import GENERATORS
from topologies.weights import RULES, CombinationWeights, combination_weights, slem


def build(name: str, nodes: int, *, seed: int | None = None, **options: Any) -> nx.Graph:
    """Graph from the generator called ``name`` (see :data:`GENERATORS`), or from
    a file when ``name`` ends in ``.graphml`` or an edge-list suffix."""
    if name.endswith((".graphml", ".edgelist", ".edges", ".txt", ".csv")):
        return load_graph(name)
    try:
        generator = GENERATORS[name]
    except KeyError:
        raise InputError(
            f"unknown topology {name!r}; expected one of {', '.join(GENERATORS)} "
            "or a .graphml / edge-list file"
        ) from None
    try:
        return generator(nodes, seed=seed, **options)
    except TypeError as e:  # an option the generator does not take
        raise InputError(f"topology {name}: {e}") from None


__all__ = [
    "DEVICE_ATTRIBUTES",
    "GENERATORS",
    "LINK_ATTRIBUTES",
    "PROFILES",
    "RULES",
    "CombinationWeights",
    "DeviceClass",
    "assign_devices",
    "assign_links",
    "build",
    "combination_weights",
    "load_graph",
    "slem",
]
