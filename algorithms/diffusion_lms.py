"""Diffusion LMS (Cattivelli & Sayed 2010; Sayed 2014): ATC, CTA and the
non-cooperative baseline, on streaming linear-regression data.

Node ``k`` observes ``d_k(i) = u_k(i)^T w* + v_k(i)`` with white Gaussian
regressors ``u_k(i) ~ N(0, regressor_var_k I)`` and noise
``v_k(i) ~ N(0, noise_var_k)``, and runs, with step size ``mu_k``:

- ATC: ``psi_k = w_k + mu_k u_k (d_k - u_k^T w_k)``, then ``w_k = sum_l a_lk psi_l``;
- CTA: ``phi_k = sum_l a_lk w_l``, then ``w_k = phi_k + mu_k u_k (d_k - u_k^T phi_k)``;
- noncoop: the LMS step alone, no messages.

The combination is re-normalized over the neighbours heard
(:mod:`algorithms.combine`). One iteration is one synchronous round
(:mod:`algorithms.rounds`); a node sends one float64 vector of ``dim`` entries
per iteration. Costs per node and iteration: LMS step ``4 dim + 2`` FLOPs,
combination ``2 dim (heard + 1) + dim``.

Per-node ``mu``, ``noise_var`` and ``regressor_var`` are node attributes of the
topology (set them with :func:`assign_node_parameters`), so the written
``topology.graphml`` holds what theory needs (:mod:`algorithms.theory`).

Metrics: network ``msd_db`` = ``10 log10(mean_k ||w_k - w*||^2)`` every
iteration (down nodes included, with their frozen estimates); at the end,
per node, ``msd_db`` averaged over the steady-state window.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import networkx as nx
import numpy as np
import pandas as pd

from actors.host import HostSetup, Inbox, Kernel, KernelCall, Outputs, Request
from algorithms.base import Final, network_rows
from algorithms.combine import combine, combine_flops
from algorithms.rounds import synchronous_rounds
from netsim import checks
from netsim import rng as rngs

if TYPE_CHECKING:
    from netsim.simulation import Simulation

STRATEGIES = ("atc", "cta", "noncoop")
CHUNK = 64  # iterations of data drawn at once per device (speed; results do not depend on it)


def assign_node_parameters(
    graph: nx.Graph,
    *,
    mu: float,
    noise_var: float,
    noise_spread: float = 1.0,
    regressor_var: float = 1.0,
    seed: int = 0,
) -> None:
    """Set node attributes ``mu``, ``noise_var`` and ``regressor_var``.

    With ``noise_spread > 1`` noise variances are log-uniform with geometric
    mean ``noise_var`` and ratio ``noise_spread`` between the largest and the
    smallest possible value.
    """
    checks.number("mu", mu, low=0, low_open=True)
    checks.number("noise_var", noise_var, low=0)
    checks.number("noise_spread", noise_spread, low=1)
    checks.number("regressor_var", regressor_var, low=0, low_open=True)
    u = rngs.generator(seed, "noise-variance").random(graph.number_of_nodes())
    for (_, data), ui in zip(graph.nodes(data=True), u, strict=True):
        data["mu"] = float(mu)
        data["noise_var"] = float(noise_var * noise_spread ** (ui - 0.5))
        data["regressor_var"] = float(regressor_var)


def target_vector(seed: int, dim: int) -> np.ndarray:
    """The unknown ``w* ~ N(0, I / dim)`` (so ``||w*||^2`` is about 1)."""
    return rngs.generator(seed, "lms-target").standard_normal(dim) / math.sqrt(dim)


def lms_step(w: np.ndarray, u: np.ndarray, d: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """One LMS update per row: ``w + mu u (d - u^T w)``."""
    e = d - np.sum(u * w, axis=1)
    return w + (mu * e)[:, None] * u


@dataclass
class LMSState:
    w: np.ndarray  # estimates (devices x dim)
    x: np.ndarray  # the value last shared: psi (ATC) or w (CTA)
    mu: np.ndarray
    u_std: np.ndarray
    v_std: np.ndarray
    target: np.ndarray
    self_weight: np.ndarray
    link_weight: np.ndarray
    data_rngs: list[np.random.Generator]
    chunk: int  # index of the loaded data chunk (-1: none)
    u: np.ndarray  # (devices, CHUNK, dim)
    v: np.ndarray  # (devices, CHUNK)


@dataclass(frozen=True)
class DiffusionLMS:
    """Diffusion LMS for ``iterations`` iterations (see the module docstring)."""

    dim: int = 10
    iterations: int = 1000
    strategy: Literal["atc", "cta", "noncoop"] = "atc"
    combination_rule: str = "metropolis"
    period_s: float | None = None
    steady_fraction: float = 0.25

    name: ClassVar[str] = "diffusion_lms"
    needs_connected: ClassVar[bool] = False
    node_attributes: ClassVar[tuple[str, ...]] = ("mu", "noise_var", "regressor_var")

    def __post_init__(self) -> None:
        checks.positive_int("dim", self.dim)
        checks.positive_int("iterations", self.iterations)
        checks.choice("strategy", self.strategy, STRATEGIES)
        checks.number("steady_fraction", self.steady_fraction, low=0, high=1, low_open=True)
        if self.period_s is not None:
            checks.number("period_s", self.period_s, low=0, low_open=True)

    @property
    def combination(self) -> str:
        return self.combination_rule

    @property
    def cooperative(self) -> bool:
        return self.strategy != "noncoop"

    @property
    def payload_bytes(self) -> int:
        return 8 * self.dim

    def window(self) -> int:
        """Number of final iterations averaged for the steady state."""
        return max(1, math.ceil(self.steady_fraction * self.iterations))

    # ------------------------------------------------------------ host side
    def init_state(self, setup: HostSetup, rngs_: list[np.random.Generator]) -> LMSState:
        assert setup.self_weight is not None and setup.link_weight is not None
        dev = setup.devices
        n = len(dev)
        return LMSState(
            w=np.zeros((n, self.dim)),
            x=np.zeros((n, self.dim)),
            mu=np.asarray(setup.nodes["mu"], dtype=float)[dev],
            u_std=np.sqrt(np.asarray(setup.nodes["regressor_var"], dtype=float)[dev]),
            v_std=np.sqrt(np.asarray(setup.nodes["noise_var"], dtype=float)[dev]),
            target=target_vector(setup.seed, self.dim),
            self_weight=setup.self_weight[dev],
            link_weight=setup.link_weight,
            data_rngs=[rngs.generator(setup.seed, "lms-data", int(d)) for d in dev],
            chunk=-1,
            u=np.empty((n, CHUNK, self.dim)),
            v=np.empty((n, CHUNK)),
        )

    def kernel(self, name: str) -> Kernel:
        kernels: dict[str, Kernel] = {
            "start": self._start,
            "step": self._step,
            "measure": _measure,
            "reset": _reset,
        }
        return kernels[name]

    def flops(self, request: Request) -> np.ndarray:
        n = len(request.devices)
        if request.kernel == "step":
            assert request.inbox is not None
            return self.step_flops(request.inbox.counts())
        if request.kernel == "start" and self.strategy != "cta":
            return np.full(n, lms_flops(self.dim))
        return np.zeros(n)

    def step_flops(self, heard: np.ndarray) -> np.ndarray:
        return combine_flops(self.dim, heard) + lms_flops(self.dim)

    def _start(self, state: LMSState, call: KernelCall) -> tuple[LMSState, Outputs]:
        idx = call.rows
        if self.strategy != "cta":  # ATC and noncoop adapt first, from w(0)
            state.x[idx] = _adapt(state, idx, state.w[idx], 0)
        else:
            state.x[idx] = state.w[idx]
        return state, {"payload": state.x[idx].copy()}

    def _step(self, state: LMSState, call: KernelCall) -> tuple[LMSState, Outputs]:
        assert call.inbox is not None
        idx, data_index = call.rows, int(call.params["data_index"])
        if self.strategy == "cta":
            phi = combine(state.w[idx], state.self_weight[idx], call.inbox, state.link_weight)
            state.w[idx] = _adapt(state, idx, phi, data_index)
            state.x[idx] = state.w[idx]
        else:
            state.w[idx] = combine(
                state.x[idx], state.self_weight[idx], call.inbox, state.link_weight
            )
            if call.params["adapt"]:
                state.x[idx] = _adapt(state, idx, state.w[idx], data_index)
        return state, {"payload": state.x[idx].copy(), "err2": _err2(state, idx)}

    # ------------------------------------------------------------ driver side
    def protocol(self, sim: Simulation) -> Generator[Any, Any, None]:
        yield from synchronous_rounds(sim, _DiffusionRun(self, sim.n_nodes))

    def final(self, metrics: pd.DataFrame) -> Final:
        rows = network_rows(metrics, "msd_db")
        w = self.window()
        tail = rows[rows["step"] > self.iterations - w]["value"].to_numpy()
        msd = 10 * math.log10(float(np.mean(10 ** (tail / 10))))
        first = self.iterations - w + 1
        return Final(
            {"msd_db": msd},
            {
                "msd_db": f"network MSD averaged over iterations {first}..{self.iterations} "
                f"(the last {self.steady_fraction:.0%}) in the linear domain, then in dB"
            },
        )


def lms_flops(dim: int) -> float:
    """FLOPs of one LMS update: dot product (2 dim), error and scaling (2), axpy (2 dim)."""
    return 4.0 * dim + 2


class _DiffusionRun:
    """Driver-side state of one run: steady-state accumulators."""

    def __init__(self, algo: DiffusionLMS, n_nodes: int) -> None:
        self.algo = algo
        self.rounds = algo.iterations
        self.period_s = algo.period_s
        self.cooperative = algo.cooperative
        self.payload_bytes = algo.payload_bytes
        self.first_steady = algo.iterations - algo.window() + 1
        self.err2_sum = np.zeros(n_nodes)

    def step_flops(self, heard: np.ndarray) -> np.ndarray:
        return self.algo.step_flops(heard)

    def start_request(self, live: np.ndarray) -> Request:
        return Request("start", live)

    def step_request(self, r: int, live: np.ndarray, inbox: Inbox) -> Request:
        # CTA adapts iteration r with data r-1; ATC combines iteration r and
        # adapts iteration r+1 (data r), except after the last iteration.
        cta = self.algo.strategy == "cta"
        params = {"data_index": r - 1 if cta else r, "adapt": cta or r < self.rounds}
        return Request("step", live, params=params, inbox=inbox)

    def measure_request(self, nodes: np.ndarray) -> Request:
        return Request("measure", nodes)

    def record(self, sim: Simulation, step: int, time: float, err2: np.ndarray) -> None:
        sim.metrics.add(time, step, -1, "msd_db", 10 * math.log10(float(err2.mean())))
        if step >= self.first_steady:
            self.err2_sum += err2
        if step == self.rounds:
            steady = self.err2_sum / (self.rounds - self.first_steady + 1)
            sim.metrics.extend(time, step, np.arange(len(steady)), "msd_db", 10 * np.log10(steady))


# ---------------------------------------------------------------- kernels
def _data(
    state: LMSState, idx: np.ndarray | slice, data_index: int
) -> tuple[np.ndarray, np.ndarray]:
    """Regressors and observations of iteration ``data_index`` for rows ``idx``.

    Data come in chunks of :data:`CHUNK` iterations per device, each device
    drawing from its own stream, all devices of the host together, so a
    device's data depend only on its id, the seed and the iteration."""
    chunk, offset = divmod(data_index, CHUNK)
    while state.chunk < chunk:
        state.chunk += 1
        for i, g in enumerate(state.data_rngs):
            g.standard_normal(out=state.u[i])
            g.standard_normal(out=state.v[i])
        state.u *= state.u_std[:, None, None]
        state.v *= state.v_std[:, None]
    if state.chunk != chunk:
        raise RuntimeError("data requested out of order")
    u = state.u[idx, offset]
    # row-wise sum rather than a BLAS product: a row's bits must not depend on the batch
    d = np.sum(u * state.target, axis=1) + state.v[idx, offset]
    return u, d


def _adapt(state: LMSState, idx: np.ndarray | slice, w: np.ndarray, data_index: int) -> np.ndarray:
    u, d = _data(state, idx, data_index)
    return lms_step(w, u, d, state.mu[idx])


def _err2(state: LMSState, idx: np.ndarray | slice) -> np.ndarray:
    dev = state.w[idx] - state.target
    return np.sum(dev * dev, axis=1)


def _measure(state: LMSState, call: KernelCall) -> tuple[LMSState, Outputs]:
    return state, {"err2": _err2(state, call.rows)}


def _reset(state: LMSState, call: KernelCall) -> tuple[LMSState, Outputs]:
    state.w[call.idx] = 0.0
    state.x[call.idx] = 0.0
    return state, {}
