"""Diffusion LMS (Cattivelli & Sayed 2010; Sayed 2014): ATC, CTA and the
non-cooperative baseline, with the sparse variants of Di Lorenzo & Sayed,
on streaming linear-regression data (:mod:`algorithms.regression`).

With step size ``mu_k`` and data ``(u_k, d_k)``:

- ATC: ``psi_k = w_k + mu_k u_k (d_k - u_k^T w_k) - mu_k rho f(w_k)``, then
  ``w_k = sum_l a_lk psi_l``;
- CTA: ``phi_k = sum_l a_lk w_l``, then
  ``w_k = phi_k + mu_k u_k (d_k - u_k^T phi_k) - mu_k rho f(phi_k)``;
- noncoop: the LMS step alone, no messages;

where the sparsity penalty ``f`` is ``0`` (``penalty="none"``), ``sign(w)``
(zero-attracting, ``"za"``) or ``sign(w) / (penalty_eps + |w|)`` (reweighted
zero-attracting, ``"rza"``) (Di Lorenzo & Sayed, "Sparse distributed learning
based on diffusion adaptation", IEEE TSP 2013).

The combination is re-normalized over the neighbours heard
(:mod:`algorithms.combine`). One iteration is one synchronous round
(:mod:`algorithms.rounds`); a node sends one float64 vector of ``dim`` entries
per iteration. Costs per node and iteration: LMS step ``4 dim + 2`` FLOPs
(``+3 dim`` with ``za``, ``+5 dim`` with ``rza``), combination
``2 dim (heard + 1) + dim``.

Per-node ``mu``, ``noise_var`` and ``regressor_var`` are node attributes of the
topology (:func:`assign_node_parameters`), so the written
``topology.graphml`` holds what theory needs (:mod:`algorithms.theory`).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import networkx as nx
import numpy as np
import pandas as pd

from algorithms.base import Final, NoChecks
from algorithms.combine import combination_weights, combine, combine_flops
from algorithms.regression import (
    EstimationRun,
    RegressionData,
    assign_data_parameters,
    steady_msd_final,
)
from algorithms.rounds import synchronous_rounds
from netsim import checks
from netsim.kernel import HostSetup, Kernel, KernelCall, Outputs, Payloads, Request

if TYPE_CHECKING:
    from netsim.simulation import Simulation

STRATEGIES = ("atc", "cta", "noncoop")
PENALTIES = ("none", "za", "rza")


def assign_node_parameters(
    graph: nx.Graph,
    *,
    mu: float,
    noise_var: float,
    noise_spread: float = 1.0,
    regressor_var: float = 1.0,
    seed: int = 0,
) -> None:
    """Set node attributes ``mu`` (the LMS step size) and the data parameters
    of :func:`algorithms.regression.assign_data_parameters`."""
    checks.number("mu", mu, low=0, low_open=True)
    assign_data_parameters(
        graph,
        noise_var=noise_var,
        noise_spread=noise_spread,
        regressor_var=regressor_var,
        seed=seed,
    )
    for _, data in graph.nodes(data=True):
        data["mu"] = float(mu)


def lms_step(
    w: np.ndarray, u: np.ndarray, d: np.ndarray, mu: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """One LMS update per row: ``w + mu u (d - u^T w)``; ``out`` (optional,
    overlapping neither ``w`` nor ``u``): where to write it."""
    e = d - np.sum(u * w, axis=1)
    out = np.multiply(u, (mu * e)[:, None], out=out)
    out += w
    return out


def sparsity_gradient(w: np.ndarray, penalty: str, eps: float) -> np.ndarray:
    """``f(w)`` of the zero-attracting penalties: ``sign(w)`` or ``sign(w) / (eps + |w|)``."""
    if penalty == "za":
        return np.sign(w)
    if penalty == "rza":
        return np.sign(w) / (eps + np.abs(w))
    return np.zeros_like(w)


def lms_flops(dim: int, penalty: str = "none") -> float:
    """FLOPs of one LMS update: dot product (2 dim), error and scaling (2),
    axpy (2 dim), and the penalty (3 dim for ZA, 5 dim for RZA)."""
    return 4.0 * dim + 2 + {"none": 0.0, "za": 3.0 * dim, "rza": 5.0 * dim}[penalty]


@dataclass
class LMSState:
    w: np.ndarray  # estimates (devices x dim)
    x: np.ndarray  # the value last shared: psi (ATC) or w (CTA)
    mu: np.ndarray
    data: RegressionData
    self_weight: np.ndarray
    link_weight: np.ndarray


@dataclass(frozen=True)
class DiffusionLMS(NoChecks):
    """Diffusion LMS for ``iterations`` iterations (see the module docstring)."""

    dim: int = 10
    iterations: int = 1000
    strategy: Literal["atc", "cta", "noncoop"] = "atc"
    combination_rule: str = "metropolis"
    penalty: Literal["none", "za", "rza"] = "none"
    rho: float = 0.0
    penalty_eps: float = 0.1
    nonzeros: int | None = None  # of the target (None: dense)
    period_s: float | None = None
    steady_fraction: float = 0.25

    name: ClassVar[str] = "diffusion_lms"
    needs_connected: ClassVar[bool] = False
    node_attributes: ClassVar[tuple[str, ...]] = ("mu", "noise_var", "regressor_var")

    def __post_init__(self) -> None:
        checks.positive_int("dim", self.dim)
        checks.positive_int("iterations", self.iterations)
        checks.choice("strategy", self.strategy, STRATEGIES)
        checks.choice("penalty", self.penalty, PENALTIES)
        checks.number("rho", self.rho, low=0)
        checks.number("penalty_eps", self.penalty_eps, low=0, low_open=True)
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
    def program(self) -> DiffusionLMS:
        return self

    # ------------------------------------------------------------ host side
    def init_state(self, setup: HostSetup, rngs_: list[np.random.Generator]) -> LMSState:
        dev = setup.devices
        self_weight, link_weight = combination_weights(setup)
        return LMSState(
            w=np.zeros((len(dev), self.dim)),
            x=np.zeros((len(dev), self.dim)),
            mu=np.asarray(setup.nodes["mu"], dtype=float)[dev],
            data=RegressionData.build(setup, self.dim, self.nonzeros),
            self_weight=self_weight,
            link_weight=link_weight,
        )

    def kernel(self, name: str) -> Kernel:
        kernels: dict[str, Kernel] = {
            "start": self._start,
            "step": self._step,
            "measure": _measure,
        }
        return kernels[name]

    def reset(self, state: LMSState, call: KernelCall) -> tuple[LMSState, Outputs]:
        return _reset(state, call)

    def cost(self, request: Request) -> np.ndarray:
        n = len(request.devices)
        if request.kernel == "step":
            assert request.inbox is not None
            return self.step_flops(request.inbox.counts())
        if request.kernel == "start" and self.strategy != "cta":
            return np.full(n, lms_flops(self.dim, self.penalty))
        return np.zeros(n)

    def step_flops(self, heard: np.ndarray) -> np.ndarray:
        return combine_flops(self.dim, heard) + lms_flops(self.dim, self.penalty)

    def payload_nbytes(self, request: Request) -> dict[str, np.ndarray]:
        """Sizes of a request's payloads before it runs: ``start`` and
        ``step`` send one float64 row of ``dim`` per device, nothing else does."""
        if request.kernel in ("start", "step"):
            return {"payload": np.full(len(request.devices), 8 * self.dim, dtype=np.int64)}
        return {}

    def _adapt(
        self,
        state: LMSState,
        idx: np.ndarray | slice,
        w: np.ndarray,
        i: int,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        u, d = state.data.sample(idx, i)
        mu = state.mu[idx]
        out = lms_step(w, u, d, mu, out)
        if self.penalty != "none":
            out -= (mu * self.rho)[:, None] * sparsity_gradient(w, self.penalty, self.penalty_eps)
        return out

    def _start(self, state: LMSState, call: KernelCall) -> tuple[LMSState, Outputs]:
        idx = call.rows
        if self.strategy != "cta":  # ATC and noncoop adapt first, from w(0)
            _update(state.x, idx, lambda out: self._adapt(state, idx, state.w[idx], 0, out))
        else:
            state.x[idx] = state.w[idx]
        return state, {"payload": Payloads.rows(state.x[idx].copy())}

    def _step(self, state: LMSState, call: KernelCall) -> tuple[LMSState, Outputs]:
        inbox = call.inbox
        assert inbox is not None
        idx, data_index = call.rows, int(call.params["data_index"])
        if self.strategy == "cta":
            phi = combine(state.w[idx], state.self_weight[idx], inbox, state.link_weight)
            _update(state.w, idx, lambda out: self._adapt(state, idx, phi, data_index, out))
            state.x[idx] = state.w[idx]
        else:
            own = state.x[idx]
            _update(
                state.w,
                idx,
                lambda out: combine(own, state.self_weight[idx], inbox, state.link_weight, out),
            )
            if call.params["adapt"]:
                _update(
                    state.x, idx, lambda out: self._adapt(state, idx, state.w[idx], data_index, out)
                )
        return state, {
            "payload": Payloads.rows(state.x[idx].copy()),
            "err2": state.data.err2(state.w[idx]),
        }

    # ------------------------------------------------------------ driver side
    def protocol(self, sim: Simulation) -> Generator[Any, Any, None]:
        run = EstimationRun(self, sim.n_nodes, combine_first=self.strategy == "cta")
        yield from synchronous_rounds(sim, run)

    def final(self, metrics: pd.DataFrame) -> Final:
        return steady_msd_final(metrics, self.iterations, self.steady_fraction)


# ---------------------------------------------------------------- kernels
def _update(
    state: np.ndarray, idx: np.ndarray | slice, compute: Callable[[np.ndarray | None], np.ndarray]
) -> None:
    """``state[idx] = compute(out)``, ``compute`` writing straight into the
    rows (``out``) where they are a view: a slice, as they are when a host's
    devices are all in the request."""
    out = state[idx] if isinstance(idx, slice) else None
    result = compute(out)
    if out is None:
        state[idx] = result


def _measure(state: LMSState, call: KernelCall) -> tuple[LMSState, Outputs]:
    return state, {"err2": state.data.err2(state.w[call.rows])}


def _reset(state: LMSState, call: KernelCall) -> tuple[LMSState, Outputs]:
    state.w[call.idx] = 0.0
    state.x[call.idx] = 0.0
    return state, {}
