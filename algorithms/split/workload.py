"""Inference workloads: when requests arrive, and what became of each.

Arrivals
--------
Each device issues requests at the times of a Poisson process of ``rate``
per second (exponential gaps from its own random stream), or at times
replayed from a CSV file with a header ``device,time`` (seconds, one row per
request). Which input a request carries is drawn from the device's stream
too, so every mode of inference sees the same requests at the same times.

Records
-------
One row per request: its arrival, the times it passed through each stage,
and the latency split into parts that follow one another::

    arrival -> device_queue -> device_compute -> uplink_queue -> transfer
            -> propagation -> server_queue -> server_compute -> reply -> done

Each part is the difference of two consecutive instants, so the parts add
up to ``done - arrival`` (up to rounding of the differences). A part that a
mode does not have (e.g. the uplink of ``local`` inference) is 0.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from netsim.errors import InputError

STAGES = (
    "arrival",
    "device_start",
    "device_finish",
    "uplink_start",
    "uplink_end",
    "server_arrival",
    "server_start",
    "server_finish",
    "done",
)
PARTS = (
    "device_queue_s",
    "device_compute_s",
    "uplink_queue_s",
    "transfer_s",
    "propagation_s",
    "server_queue_s",
    "server_compute_s",
    "reply_s",
)  # PARTS[i] = STAGES[i + 1] - STAGES[i]
OK, DROPPED, DEVICE_DOWN, SERVER_DOWN = "ok", "dropped", "device_down", "server_down"
PERCENTILES = (50, 95, 99)


def poisson_arrivals(rate: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` arrival times of a Poisson process of ``rate`` per second."""
    return np.cumsum(rng.exponential(1.0 / rate, size=count))


def read_arrivals(path: str | Path, devices: np.ndarray) -> dict[int, np.ndarray]:
    """Arrival times per device from a CSV file ``device,time``; one clear
    error naming the file and line for anything else."""
    path = Path(path)
    known = {int(d) for d in devices}
    times: dict[int, list[float]] = {int(d): [] for d in devices}
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or [h.strip() for h in header] != ["device", "time"]:
                raise InputError(f"{path}:1: expected the header 'device,time', got {header!r}")
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != 2:
                    raise InputError(f"{path}:{line}: expected 2 fields device,time, got {row!r}")
                try:
                    device, t = int(row[0]), float(row[1])
                except ValueError:
                    raise InputError(
                        f"{path}:{line}: expected an integer device and a time in seconds, "
                        f"got {row!r}"
                    ) from None
                if device not in known:
                    raise InputError(
                        f"{path}:{line}: device {device} is not a requesting device "
                        f"(expected one of {min(known)}..{max(known)})"
                    )
                if not (math.isfinite(t) and t >= 0):
                    raise InputError(f"{path}:{line}: time must be a finite number >= 0, got {t}")
                times[device].append(t)
    except OSError as e:
        raise InputError(f"{path}: cannot read the arrivals file ({e.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    if not any(times.values()):
        raise InputError(f"{path}: no arrivals")
    return {d: np.sort(np.array(t, dtype=float)) for d, t in times.items()}


@dataclass
class RequestLog:
    """Request records, one dict per request, turned into a table at the end."""

    rows: list[dict[str, object]] = field(default_factory=list)

    def add(
        self,
        *,
        device: int,
        request: int,
        image: int,
        stages: dict[str, float],
        status: str = OK,
        **values: float,
    ) -> None:
        """A request that reached ``stages`` (instants by name; the missing ones
        repeat the last reached, so absent parts are 0)."""
        times = {}
        last = stages["arrival"]
        for name in STAGES:
            last = stages.get(name, last)
            times[name] = last
        parts = {p: times[STAGES[i + 1]] - times[STAGES[i]] for i, p in enumerate(PARTS)}
        latency = times["done"] - times["arrival"] if status == OK else math.nan
        self.rows.append(
            {
                "device": device,
                "request": request,
                "image": image,
                "status": status,
                **times,
                **parts,
                "latency_s": latency,
                **values,
            }
        )

    def frame(self) -> pd.DataFrame:
        table = pd.DataFrame(self.rows)
        if len(table):
            table = table.sort_values(["arrival", "device"], kind="stable").reset_index(drop=True)
        return table


def latency_percentiles(latency: np.ndarray) -> dict[str, float]:
    """``p50_s``, ``p95_s``, ``p99_s`` of the latencies (linear interpolation)."""
    latency = np.asarray(latency, dtype=float)
    if not len(latency):
        return {f"p{q}_s": math.nan for q in PERCENTILES}
    values = np.percentile(latency, PERCENTILES)
    return {f"p{q}_s": float(v) for q, v in zip(PERCENTILES, values, strict=True)}


def throughput(requests: pd.DataFrame) -> float:
    """Completed requests per second, from the first arrival to the last completion."""
    done = requests[requests["status"] == OK]
    if len(done) == 0:
        return 0.0
    span = float(done["done"].max() - requests["arrival"].min())
    return len(done) / span if span > 0 else math.inf
