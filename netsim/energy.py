"""Energy: each device's meter, and batteries that run out.

A device draws (node attributes, SI units)

- ``energy_per_flop_J`` for every FLOP it computes,
- ``energy_tx_per_byte_J`` for every byte it sends and
  ``energy_rx_per_byte_J`` for every byte delivered to it,
- ``idle_power_W`` while it is up and not computing (nothing while down).

So at the end of a run, per device::

    energy_J = compute_J + tx_J + rx_J + idle_J
    compute_J = energy_per_flop_J * flops     tx_J = energy_tx_per_byte_J * bytes_sent
    rx_J = energy_rx_per_byte_J * bytes_received
    idle_J = idle_power_W * (idle_s - down_s)

A device with a finite ``battery_J`` goes down, for good, at the instant its
meter reaches it. For the battery the meter runs continuously through
computing and idling, and takes a message's transmit energy when its
transmission ends and its receive energy when it is delivered. The
exhaustion is a failure like any other: recorded as a ``down`` event in
``failures.csv``, applied before other events at that time, so a replay
reproduces it. Cost: one check per job boundary, message and exhaustion
of a battery device, each O(work in progress).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from netsim.devices import Devices
from netsim.failures import urgent_at
from netsim.network import Network

ATTRIBUTES = (
    "energy_per_flop_J",
    "energy_tx_per_byte_J",
    "energy_rx_per_byte_J",
    "idle_power_W",
)
EXHAUSTED_RTOL = 1e-9  # the meter reaches the battery up to rounding of the exhaustion time


@dataclass(frozen=True)
class EnergyModel:
    """Energy coefficients of every device, as arrays by node id."""

    per_flop_J: np.ndarray
    tx_per_byte_J: np.ndarray
    rx_per_byte_J: np.ndarray
    idle_power_W: np.ndarray
    battery_J: np.ndarray  # inf: no battery

    @classmethod
    def from_nodes(cls, nodes: dict[str, np.ndarray]) -> EnergyModel:
        n = len(nodes["energy_per_flop_J"])
        return cls(
            nodes["energy_per_flop_J"],
            nodes["energy_tx_per_byte_J"],
            nodes["energy_rx_per_byte_J"],
            nodes["idle_power_W"],
            nodes.get("battery_J", np.full(n, np.inf)),
        )

    def breakdown(
        self, flops: np.ndarray, sent: np.ndarray, received: np.ndarray, idle_up_s: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Energy by cause, per device."""
        parts = {
            "energy_compute_J": self.per_flop_J * flops,
            "energy_tx_J": self.tx_per_byte_J * sent,
            "energy_rx_J": self.rx_per_byte_J * received,
            "energy_idle_J": self.idle_power_W * idle_up_s,
        }
        parts["energy_J"] = (
            parts["energy_compute_J"]
            + parts["energy_tx_J"]
            + parts["energy_rx_J"]
            + parts["energy_idle_J"]
        )
        return parts


class BatteryWatch:
    """Takes devices down when their battery runs out.

    Wakes (before other events of that instant) at the next job boundary,
    message event or predicted exhaustion of any battery device, and again
    whenever new work is committed for one (:meth:`poke`)."""

    def __init__(
        self,
        env: simpy.Environment,
        devices: Devices,
        network: Network,
        energy: EnergyModel,
        take_down: Callable[[int], None],
    ) -> None:
        self.env = env
        self.devices = devices
        self.network = network
        self.energy = energy
        self.has_battery = np.isfinite(energy.battery_J)
        self.exhausted = devices.exhausted
        self._take_down = take_down
        self._generation = 0
        devices.on_commit = self._on_commit
        network.on_send = self._on_commit

    def start(self) -> None:
        self._schedule()

    def meter(self, t: float) -> np.ndarray:
        """Energy drawn by ``t``, per device, as the battery sees it."""
        d = self.devices
        flops, busy, down = d.flops_by(t), d.busy_by(t), d.down_by(t)
        sent, received = self.network.node_bytes_by(t)
        idle_up = np.clip(t - busy - down, 0.0, None)
        return self.energy.breakdown(flops, sent, received, idle_up)["energy_J"]

    def _on_commit(self, devices: np.ndarray) -> None:
        if self.has_battery[devices].any():
            self._schedule()

    def _schedule(self) -> None:
        self._generation += 1
        generation = self._generation
        t = float(self.env.now)
        watched = self.has_battery & ~self.exhausted & self.network.node_up
        if not watched.any():
            return
        nxt = np.minimum(self._empty_at(t), self.devices.boundaries_after(t, watched))
        nxt = np.minimum(nxt, self.network.events_after(t, watched))
        wake = float(nxt[watched].min())
        if np.isfinite(wake):
            urgent_at(self.env, max(wake, t)).callbacks.append(lambda _: self._wake(generation))

    def _empty_at(self, t: float) -> np.ndarray:
        """When each device's battery would run out if it kept drawing what it
        draws at ``t`` (``t`` itself: it has run out)."""
        meter = self.meter(t)
        remaining = self.energy.battery_J - meter
        power = self.devices.power_now(t, self.energy.per_flop_J)
        power = np.where(power > 0, power, self.energy.idle_power_W)
        with np.errstate(divide="ignore", invalid="ignore"):
            empty = np.where(power > 0, t + np.maximum(remaining, 0.0) / power, np.inf)
        spent = meter >= self.energy.battery_J * (1 - EXHAUSTED_RTOL)
        return np.where(spent | (empty <= t), t, empty)

    def _wake(self, generation: int) -> None:
        if generation != self._generation:
            return  # superseded by a later schedule
        t = float(self.env.now)
        empty = self.has_battery & ~self.exhausted & (self._empty_at(t) <= t)
        for k in np.flatnonzero(empty):
            self.exhausted[k] = True
            if self.network.node_up[k]:
                self._take_down(int(k))
        self._schedule()
