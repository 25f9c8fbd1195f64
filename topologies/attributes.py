"""Attribute models: device and link parameters drawn from distributions.

Device (node) attributes, in SI units:

========================  ===========================================
``compute_flops``         compute budget, FLOP/s
``uplink_Bps``            uplink bandwidth, bytes/s
``downlink_Bps``          downlink bandwidth, bytes/s
``energy_per_flop_J``     energy per FLOP computed, J
``energy_tx_per_byte_J``  energy per byte sent, J
``energy_rx_per_byte_J``  energy per byte received, J
``idle_power_W``          power drawn while up and not computing, W
``battery_J``             optional: battery capacity, J (absent or ``inf``: mains)
``device_class``          name of the class the device was drawn from
========================  ===========================================

A graph file written before transmit and receive energy were separate may
carry ``energy_per_byte_J``; it then stands for both.

Link (edge) attributes: ``latency_s`` (propagation), ``bandwidth_Bps`` (a cap
on the rate of messages on this link, ``inf`` for none), ``loss`` (probability
that a message on the link is lost).

The models only fill attributes that are missing, so a generator's or a
file's own values win. The figures in :data:`PROFILES` are illustrative
orders of magnitude, not measurements of particular devices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np

from netsim import checks
from netsim import rng as rngs
from netsim.errors import InputError

DEVICE_ATTRIBUTES = (
    "compute_flops",
    "uplink_Bps",
    "downlink_Bps",
    "energy_per_flop_J",
    "energy_tx_per_byte_J",
    "energy_rx_per_byte_J",
    "idle_power_W",
)
LINK_ATTRIBUTES = ("latency_s", "bandwidth_Bps", "loss")


@dataclass(frozen=True)
class DeviceClass:
    """One kind of device and its share of the population."""

    name: str
    share: float
    compute_flops: float
    uplink_Bps: float
    downlink_Bps: float
    energy_per_flop_J: float
    energy_tx_per_byte_J: float
    energy_rx_per_byte_J: float
    idle_power_W: float


PROFILES: dict[str, tuple[DeviceClass, ...]] = {
    # a 10 GFLOP/s device on a symmetric 100 Mbit/s link
    "homogeneous": (DeviceClass("device", 1.0, 1e10, 1.25e7, 1.25e7, 1e-10, 1e-7, 5e-8, 0.1),),
    "mixed": (
        DeviceClass("phone", 0.5, 2e10, 2.5e6, 1.25e7, 1e-10, 1e-7, 5e-8, 0.05),
        DeviceClass("laptop", 0.3, 1e11, 1.25e7, 6.25e7, 2e-10, 5e-8, 2.5e-8, 2.0),
        DeviceClass("iot", 0.2, 1e8, 2.5e5, 1.25e6, 1e-9, 2e-7, 1e-7, 0.01),
    ),
}
# Tiers of the edge_cloud topology get server-class defaults.
TIER_CLASSES: dict[str, DeviceClass] = {
    "cloud": DeviceClass("cloud", 0.0, 1e13, 1.25e9, 1.25e9, 5e-11, 1e-8, 1e-8, 50.0),
    "edge": DeviceClass("edge", 0.0, 1e12, 1.25e8, 1.25e8, 1e-10, 2e-8, 2e-8, 20.0),
}


def assign_devices(graph: nx.Graph, profile: str = "homogeneous", *, seed: int = 0) -> None:
    """Draw a device class for every node (by the classes' shares) and fill its
    missing device attributes. Nodes with a ``tier`` of ``cloud``/``edge`` get
    server-class values."""
    if profile not in PROFILES:
        raise InputError(
            f"unknown device profile {profile!r}; expected one of {', '.join(PROFILES)}"
        )
    classes = PROFILES[profile]
    shares = np.array([c.share for c in classes], dtype=float)
    rng = rngs.generator(seed, "device-classes")
    draws = rng.choice(len(classes), size=graph.number_of_nodes(), p=shares / shares.sum())
    for (_, data), draw in zip(graph.nodes(data=True), draws, strict=True):
        cls = TIER_CLASSES.get(data.get("tier", ""), classes[int(draw)])
        data.setdefault("device_class", cls.name)
        if "energy_per_byte_J" in data:  # an older file: one figure for both directions
            data.setdefault("energy_tx_per_byte_J", data["energy_per_byte_J"])
            data.setdefault("energy_rx_per_byte_J", data["energy_per_byte_J"])
        for name in DEVICE_ATTRIBUTES:
            data.setdefault(name, float(getattr(cls, name)))


def assign_links(
    graph: nx.Graph,
    *,
    latency_s: float = 5e-3,
    bandwidth_Bps: float = math.inf,
    bandwidth_sigma: float = 0.0,
    loss: float = 0.0,
    seed: int = 0,
) -> None:
    """Fill missing link attributes.

    With ``bandwidth_sigma > 0`` each link's cap is log-normal with median
    ``bandwidth_Bps`` and log-standard deviation ``bandwidth_sigma``.
    """
    checks.number("latency_s", latency_s, low=0)
    if not (isinstance(bandwidth_Bps, int | float) and bandwidth_Bps > 0):
        raise InputError(
            f"bandwidth_Bps: expected a number > 0 (inf: no cap), got {bandwidth_Bps!r}"
        )
    checks.number("bandwidth_sigma", bandwidth_sigma, low=0)
    checks.number("loss", loss, low=0, high=1, high_open=True)
    if bandwidth_sigma > 0 and not math.isfinite(bandwidth_Bps):
        raise InputError("assign_links: a log-normal bandwidth needs a finite median bandwidth_Bps")
    rng = rngs.generator(seed, "link-bandwidth")
    factors = np.exp(bandwidth_sigma * rng.standard_normal(graph.number_of_edges()))
    for (_, _, data), factor in zip(graph.edges(data=True), factors, strict=True):
        data.setdefault("latency_s", float(latency_s))
        data.setdefault("bandwidth_Bps", float(bandwidth_Bps * factor))
        data.setdefault("loss", float(loss))
