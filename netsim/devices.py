"""Devices: the per-device resources on the clock.

Compute queue
-------------
A device runs **one job at a time**, first come first served, at its
``compute_flops``. A job of ``F`` FLOPs committed at ``now`` starts when the
device is free and lasts ``F / compute_flops`` (the budget at commit time;
a later ``compute`` event changes later jobs only)::

    start = max(now, free_at)    finish = start + F / compute_flops

Jobs are committed at the current time, so the work a device has queued
beyond ``now`` is one contiguous block ending at ``free_at``, unless a protocol
commits them ahead of time (``Devices.run(..., at=)``: a job arriving at a
later time ``at``, ``start = max(at, free_at)``; windowed gossip does, for
jobs of a window it processes at its start). A job of no FLOPs takes no time
and holds nobody up: it is done when the device is free (work queued after a
job follows it, even when it costs nothing).

Failures
--------
When a device goes down at ``t`` its queue is lost: the running job stops at
``t`` (its FLOPs count pro rata), queued jobs never run, and ``free_at``
becomes ``t``. A protocol learns that work was lost with
:meth:`Devices.failed_since`, and can wait for a device to come back with
:meth:`Devices.when_up` instead of polling.

Accounting
----------
At any time ``T``: ``busy_s`` is the time spent running jobs by ``T``,
``down_s`` the time spent down, and ``idle_s = T - busy_s`` (so
``busy_s + idle_s == T`` and ``idle_s >= down_s >= 0``). ``flops`` are the FLOPs
done by ``T``. Costs: committing a batch of jobs is O(batch); a failure
costs O(jobs not yet finished).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from netsim.network import Network


@dataclass(eq=False)
class JobBatch:
    """Jobs committed by one call, one per device (distinct devices)."""

    device: np.ndarray
    start: np.ndarray
    finish: np.ndarray
    length: np.ndarray  # finish - start, as computed (not re-derived: no rounding)
    flops: np.ndarray
    last: float = 0.0

    def __post_init__(self) -> None:
        self.last = float(self.finish.max()) if len(self.finish) else -np.inf

    def busy_by(self, t: float) -> np.ndarray:
        """Time each job has run by ``t``."""
        return np.where(t >= self.finish, self.length, np.clip(t - self.start, 0.0, None))

    def done_fraction(self, t: float) -> np.ndarray:
        """Share of each job done by ``t``."""
        safe = np.where(self.length > 0, self.length, 1.0)
        partial = np.clip((t - self.start) / safe, 0.0, 1.0)
        return np.where((t >= self.finish) | (self.length <= 0), 1.0, partial)


class Devices:
    """Compute queues, up/down state and time accounting of every device."""

    def __init__(self, env: simpy.Environment, network: Network, compute_flops: np.ndarray) -> None:
        n = network.links.n_nodes
        self.env = env
        self.network = network
        self.n = n
        self.compute_flops = np.array(compute_flops, dtype=float)  # compute events change it
        self.nominal_compute_flops = self.compute_flops.copy()  # as the scenario gave them
        self.free_at = np.zeros(n)
        self.last_down = np.full(n, -np.inf)
        self.exhausted = np.zeros(n, dtype=bool)  # battery empty: down for good
        self.jobs = 0  # jobs with a cost, for the summary's event count
        self._live: list[JobBatch] = []
        self._held = 0  # batches the list would hold with full retirements only
        self._held_jobs = 0  # jobs in the list
        self._flops_done = np.zeros(n)  # of retired batches
        self._busy_done = np.zeros(n)
        self._down_done = np.zeros(n)  # of closed down intervals
        self._waiting_up: dict[int, list[simpy.Event]] = {}
        self.on_commit: Callable[[np.ndarray], None] | None = None  # the battery watch's hook

    # ------------------------------------------------------------ state
    @property
    def up(self) -> np.ndarray:
        return self.network.node_up

    def failed_since(self, devices: np.ndarray | int, t: float) -> np.ndarray:
        """Whether each device is down now or went down at or after ``t``
        (work it was given at ``t`` is lost)."""
        d = np.asarray(devices, dtype=np.int64)
        return ~self.network.node_up[d] | (self.last_down[d] >= t)

    def when_up(self, device: int) -> simpy.Event:
        """An event that fires when ``device`` is up (at once if it is)."""
        event = self.env.event()
        if self.network.node_up[device]:
            event.succeed()
        else:
            self._waiting_up.setdefault(device, []).append(event)
        return event

    # ------------------------------------------------------------ work
    def run(
        self, devices: np.ndarray, flops: np.ndarray | float, at: np.ndarray | None = None
    ) -> np.ndarray:
        """Commit one job per device (distinct devices) now; their finish times.

        ``at`` (per device, ``>= now``): the job arrives then instead, as if
        committed at ``at``; no failure or budget change may come between
        ``now`` and ``at`` (the caller's guarantee), and calls for one device
        must come in the order of their ``at``."""
        now = float(self.env.now)
        d = np.asarray(devices, dtype=np.int64)
        f = np.broadcast_to(np.asarray(flops, dtype=float), d.shape)
        costly = f > 0
        start = np.maximum(now if at is None else at, self.free_at[d])
        if not costly.any():
            return start
        if not np.all(self.network.node_up[d[costly]]):
            raise RuntimeError("protocol error: work given to a device that is down")
        length = np.where(costly, f / self.compute_flops[d], 0.0)
        finish = start + length
        # every device has work (a synchronous round): no masks
        c = slice(None) if costly.all() else costly
        self.free_at[d[c]] = finish[c]
        batch = JobBatch(d[c].copy(), start[c], finish[c].copy(), length[c], f[c].copy())
        self._live.append(batch)
        self.jobs += len(batch.device)
        self._held += 1
        self._held_jobs += len(batch.device)
        if at is not None:
            # jobs committed ahead may finish out of commit order across batches: fold the
            # finished head only, so each device's totals add up in the order its jobs ran
            self._retire_oldest(now)
        elif self._held > 64:
            self._retire(now)
        elif self._held_jobs > 2 * self.n:  # large batches: let the finished ones go now
            self._retire_oldest(now)
        if self.on_commit is not None:
            self.on_commit(batch.device)
        return finish

    def _retire(self, now: float) -> None:
        keep = []
        for b in self._live:
            if b.last > now:
                keep.append(b)
                continue
            self._fold(b)
        self._live = keep
        self._held = len(keep)
        self._held_jobs = sum(len(b.device) for b in keep)

    def _retire_oldest(self, now: float) -> None:
        """Retire the finished batches at the head of the list only: the totals
        get the same additions in the same order as :meth:`_retire` gives them
        (``_held`` still counts them, so full retirements come when they did)."""
        done = 0
        while done < len(self._live) and self._live[done].last <= now:
            self._fold(self._live[done])
            self._held_jobs -= len(self._live[done].device)
            done += 1
        del self._live[:done]

    def _fold(self, b: JobBatch) -> None:
        np.add.at(self._flops_done, b.device, b.flops)
        np.add.at(self._busy_done, b.device, b.length)

    def live_jobs(self) -> list[JobBatch]:
        """Batches with jobs not finished by now."""
        self._retire(float(self.env.now))
        return self._live

    # ------------------------------------------------------------ failures
    def take_down(self, device: int, t: float) -> bool:
        """``device`` goes down at ``t``; ``False`` if it already was."""
        if not self.network.node_down(device, t):
            return False
        self.last_down[device] = t
        self.free_at[device] = min(self.free_at[device], t)
        for b in self._live:
            mine = b.device == device
            if not mine.any() or b.last <= t:
                continue
            fraction = b.done_fraction(t)
            hit = mine & (b.finish > t)
            b.flops[hit] *= fraction[hit]
            b.length[hit] = np.clip(t - b.start[hit], 0.0, None)
            b.finish[hit] = b.start[hit] + b.length[hit]
            b.last = float(b.finish.max())
        return True

    def bring_up(self, device: int, t: float) -> bool:
        """``device`` comes back at ``t``; ``False`` if it already was up, or
        its battery is empty."""
        since = float(self.network.node_down_since[device])
        if self.exhausted[device] or not self.network.node_up_at(device, t):
            return False
        self._down_done[device] += t - since
        for event in self._waiting_up.pop(device, []):
            event.succeed()
        return True

    # ------------------------------------------------------------ accounting
    def flops_by(self, t: float) -> np.ndarray:
        """FLOPs done by ``t``, per device."""
        out = self._flops_done.copy()
        for b in self._live:
            np.add.at(out, b.device, b.flops * b.done_fraction(t))
        return out

    def busy_by(self, t: float) -> np.ndarray:
        """Time spent running jobs by ``t``, per device."""
        out = self._busy_done.copy()
        for b in self._live:
            np.add.at(out, b.device, b.busy_by(t))
        return out

    def down_by(self, t: float) -> np.ndarray:
        """Time spent down by ``t``, per device."""
        net = self.network
        open_interval = np.where(net.node_up, 0.0, t - net.node_down_since)
        return self._down_done + np.clip(open_interval, 0.0, None)

    def power_now(self, t: float, energy_per_flop_J: np.ndarray) -> np.ndarray:
        """Compute power (W) each device draws at ``t``: the running job's FLOP
        rate times its energy per FLOP (0 when idle)."""
        rate = np.zeros(self.n)
        for b in self._live:
            running = (b.start <= t) & (t < b.finish)
            if running.any():
                rate[b.device[running]] = b.flops[running] / b.length[running]
        return rate * energy_per_flop_J

    def boundaries_after(self, t: float, devices: np.ndarray) -> np.ndarray:
        """Per device of ``devices`` (a mask over all), the next job start or finish after ``t``."""
        nxt = np.full(self.n, np.inf)
        for b in self._live:
            sel = devices[b.device]
            if not sel.any():
                continue
            d, s, f = b.device[sel], b.start[sel], b.finish[sel]
            cand = np.where(s > t, s, np.where(f > t, f, np.inf))
            np.minimum.at(nxt, d, cand)
        return nxt
