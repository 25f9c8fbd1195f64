"""Streaming linear regression: the data model that diffusion LMS, its sparse
variants and APSM estimate, and how their error is measured.

Node ``k`` observes, at iteration ``i`` (data index ``i - 1``),
``d_k(i) = u_k(i)^T w* + v_k(i)`` with white Gaussian regressors
``u_k(i) ~ N(0, regressor_var_k I)`` and noise ``v_k(i) ~ N(0, noise_var_k)``.
``w*`` is dense, or has ``nonzeros`` entries at random positions with
magnitudes bounded away from zero (:func:`target_vector`); either way
``E ||w*||^2 = 1``.

Every device draws its data from its own stream (purpose ``lms-data``), in
chunks of :data:`CHUNK` iterations for speed. Its data depend only on the run
seed, its id and the iteration, never on the algorithm, the backend, the
host it lives on, or failures (a down node misses its samples), so
algorithms compared with the same seed see the same target and the same data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np
import pandas as pd

from algorithms.base import Final, network_rows
from netsim import checks
from netsim import rng as rngs
from netsim.errors import InputError
from netsim.kernel import HostSetup, Inbox, Request
from netsim.streams import Streams

if TYPE_CHECKING:
    from netsim.simulation import Simulation

CHUNK = 64  # iterations of data drawn at once per device (speed; results do not depend on it)


def assign_data_parameters(
    graph: nx.Graph,
    *,
    noise_var: float,
    noise_spread: float = 1.0,
    regressor_var: float = 1.0,
    seed: int = 0,
) -> None:
    """Set node attributes ``noise_var`` and ``regressor_var``.

    With ``noise_spread > 1`` noise variances are log-uniform with geometric
    mean ``noise_var`` and ratio ``noise_spread`` between the largest and the
    smallest possible value.
    """
    checks.number("noise_var", noise_var, low=0)
    checks.number("noise_spread", noise_spread, low=1)
    checks.number("regressor_var", regressor_var, low=0, low_open=True)
    u = rngs.generator(seed, "noise-variance").random(graph.number_of_nodes())
    for (_, data), ui in zip(graph.nodes(data=True), u, strict=True):
        data["noise_var"] = float(noise_var * noise_spread ** (ui - 0.5))
        data["regressor_var"] = float(regressor_var)


def target_vector(seed: int, dim: int, nonzeros: int | None = None) -> np.ndarray:
    """The unknown ``w*``.

    Dense (``nonzeros`` None or ``dim``): ``N(0, I / dim)``. Sparse: ``nonzeros``
    entries at random positions with random signs and magnitudes uniform in
    ``[0.5, 1.5] * sqrt(c / nonzeros)``, ``c = 12 / 13`` so that ``E ||w*||^2 = 1``:
    bounded away from zero, as sparse-identification experiments use, so that
    "k non-zeros" means k taps that matter.
    """
    rng = rngs.generator(seed, "lms-target")
    if nonzeros is None or nonzeros == dim:
        return rng.standard_normal(dim) / math.sqrt(dim)
    checks.positive_int("nonzeros", nonzeros)
    if nonzeros > dim:
        raise InputError(f"nonzeros: expected at most dim = {dim}, got {nonzeros}")
    support = rng.choice(dim, nonzeros, replace=False)
    magnitude = rng.uniform(0.5, 1.5, nonzeros) * math.sqrt(12 / 13 / nonzeros)
    w = np.zeros(dim)
    w[support] = rng.choice([-1.0, 1.0], nonzeros) * magnitude
    return w


@dataclass
class RegressionData:
    """The data streams of the devices of one host."""

    target: np.ndarray
    u_std: np.ndarray
    v_std: np.ndarray
    streams: Streams  # each device's ``lms-data`` stream
    chunk: int  # index of the loaded chunk (-1: none)
    u: np.ndarray  # (devices, CHUNK, dim)
    v: np.ndarray  # (devices, CHUNK): the noise, then the observations d

    @classmethod
    def build(cls, setup: HostSetup, dim: int, nonzeros: int | None = None) -> RegressionData:
        dev = setup.devices
        return cls(
            target=target_vector(setup.seed, dim, nonzeros),
            u_std=np.sqrt(np.asarray(setup.nodes["regressor_var"], dtype=float)[dev]),
            v_std=np.sqrt(np.asarray(setup.nodes["noise_var"], dtype=float)[dev]),
            streams=Streams(setup.seed, "lms-data", dev),
            chunk=-1,
            u=np.empty((len(dev), CHUNK, dim)),
            v=np.empty((len(dev), CHUNK)),
        )

    def sample(self, idx: np.ndarray | slice, data_index: int) -> tuple[np.ndarray, np.ndarray]:
        """Regressors ``(rows, dim)`` and observations ``(rows,)`` of iteration
        ``data_index`` for rows ``idx``. Data indices must not go backwards."""
        chunk, offset = divmod(data_index, CHUNK)
        while self.chunk < chunk:  # every device of the host draws the next chunk
            self.chunk += 1
            self.streams.draw(self._draw)
            self.u *= self.u_std[:, None, None]
            self.v *= self.v_std[:, None]
            self._observe()
        if self.chunk != chunk:
            raise RuntimeError("data requested out of order")
        return self.u[idx, offset], self.v[idx, offset]

    def _observe(self, block: int = 64) -> None:
        """Turn the noise ``v`` into the observations ``d = u^T w* + v`` of
        the whole chunk, ``block`` devices at a time (a bounded temporary)."""
        for start in range(0, len(self.u), block):
            u = self.u[start : start + block]
            # a row-wise sum, not a BLAS product: a row's bits must not depend on the batch
            self.v[start : start + block] += np.sum(u * self.target, axis=2)

    def _draw(self, i: int, g: np.random.Generator) -> None:
        g.standard_normal(out=self.u[i])
        g.standard_normal(out=self.v[i])

    def err2(self, w: np.ndarray) -> np.ndarray:
        """``||w_k - w*||^2`` per row."""
        dev = w - self.target
        dev *= dev
        return np.sum(dev, axis=1)


# ---------------------------------------------------------------- error measurement
def steady_window(iterations: int, fraction: float) -> int:
    """Number of final iterations averaged for the steady state."""
    return max(1, math.ceil(fraction * iterations))


class MSDRecorder:
    """Driver side: records the network ``msd_db`` each iteration (down nodes
    included) and, at the end, each node's MSD averaged over the steady window."""

    def __init__(self, iterations: int, fraction: float, n_nodes: int) -> None:
        self.iterations = iterations
        self.first_steady = iterations - steady_window(iterations, fraction) + 1
        self.err2_sum = np.zeros(n_nodes)

    def record(
        self,
        sim: Simulation,
        step: int,
        time: float,
        observed: dict[str, np.ndarray],
        payloads: dict[str, Any],
    ) -> None:
        err2 = observed["err2"]
        metrics = sim.metrics
        metrics.add(time, step, -1, "msd_db", 10 * math.log10(float(err2.mean())))
        if step >= self.first_steady:
            self.err2_sum += err2
        if step == self.iterations:
            steady = self.err2_sum / (self.iterations - self.first_steady + 1)
            metrics.extend(time, step, np.arange(len(steady)), "msd_db", 10 * np.log10(steady))


def convergence_iteration(msd_db: np.ndarray, steady_db: float, margin_db: float = 3.0) -> int:
    """First iteration at which the network MSD, averaged over 20 iterations
    (linear domain), comes within ``margin_db`` of ``steady_db``."""
    linear = 10 ** (np.asarray(msd_db) / 10)
    smooth = np.convolve(linear, np.ones(20) / 20, mode="valid")
    hit = np.flatnonzero(10 * np.log10(smooth) <= steady_db + margin_db)
    return int(hit[0]) + 20 if len(hit) else len(linear)


class EstimationRun:
    """Driver side of a round-based estimator (diffusion LMS, APSM) for
    :func:`algorithms.rounds.synchronous_rounds`: its requests, and the MSD
    recording. ``combine_first`` (CTA, APSM): round ``r`` combines, then adapts
    with the data of iteration ``r``; otherwise (ATC) round ``r`` combines
    iteration ``r`` and adapts iteration ``r + 1``, except after the last."""

    observed: tuple[str, ...] = ("err2",)
    observed_payloads: tuple[str, ...] = ()
    reports_flops = False  # (no encoding cost: messages go without waiting for the hosts)

    def __init__(self, algo: Any, n_nodes: int, combine_first: bool) -> None:
        self.rounds = algo.iterations
        self.period_s = algo.period_s
        self.cooperative = algo.cooperative
        self.step_flops = algo.step_flops
        self.combine_first = combine_first
        self.record = MSDRecorder(algo.iterations, algo.steady_fraction, n_nodes).record

    def start_request(self, live: np.ndarray) -> Request:
        return Request("start", live)

    def step_request(self, r: int, live: np.ndarray, inbox: Inbox) -> Request:
        if self.combine_first:
            params = {"data_index": r - 1, "adapt": True}
        else:
            params = {"data_index": r, "adapt": r < self.rounds}
        return Request("step", live, params=params, inbox=inbox)

    def measure_request(self, nodes: np.ndarray) -> Request:
        return Request("measure", nodes)


STILL_FALLING_DB = 1.0  # a window whose halves differ more than this is not steady


def steady_msd_final(metrics: pd.DataFrame, iterations: int, fraction: float) -> Final:
    """``msd_db``: the network MSD averaged over the steady window, linear domain."""
    rows = network_rows(metrics, "msd_db")
    w = steady_window(iterations, fraction)
    tail = rows[rows["step"] > iterations - w]["value"].to_numpy()
    msd = 10 * math.log10(float(np.mean(10 ** (tail / 10))))
    note = (
        f"network MSD averaged over iterations {iterations - w + 1}..{iterations} "
        f"(the last {fraction:.0%}) in the linear domain, then in dB"
    )
    half = len(tail) // 2
    if half >= 2:  # still falling: the window is not steady yet
        first, second = (
            10 * math.log10(float(np.mean(10 ** (t / 10)))) for t in np.split(tail, [half])
        )
        if first - second > STILL_FALLING_DB:
            note += (
                f"; NOT steady: its second half is {first - second:.1f} dB below its first "
                "(run more iterations)"
            )
    return Final({"msd_db": msd}, {"msd_db": note})
