"""Sparsity-aware adaptive projected subgradient method (APSM) over a
diffusion network: Chouvardas, Slavakis, Kopsinis & Theodoridis, "A
sparsity-aware adaptive algorithm for distributed learning", IEEE TSP 60(10),
2012 (arXiv 1112.5716); ``papers.md`` section 1.

Per node and iteration (combine, then adapt):

1. combine: ``phi_k = sum_l a_lk w_l`` (re-normalized over the neighbours heard);
2. the ``q`` most recent samples ``(u_j, d_j)`` of the node define hyperslabs
   ``S_j = {w : |d_j - u_j^T w| <= eps}``; their projections ``P_j(phi)`` are
   combined with weights ``1/q`` and an extrapolated step
   ``mu_n = mu M_n``, ``M_n = sum_j ||P_j(phi) - phi||^2 / q / ||sum_j (P_j(phi) - phi) / q||^2``
   (1 if 0/0): ``x = phi + mu_n (sum_j P_j(phi) / q - phi)``;
3. sparsity: ``w_k = P_B(x)``, the projection onto the weighted l1 ball
   ``B = {z : sum_i psi_i |z_i| <= delta}`` with ``psi_i = 1 / (|phi_i| + eps_hat)``.

Option ``metric="proportionate"`` (*unverified* constants, see docs/apsm.md):
both projections in the variable metric ``G^-1 = diag(g)``,
``g_i = (1 - alpha) / m + alpha |phi_i| / ||phi||_1``.

Until a node has ``q`` samples, the empty slots count as satisfied
constraints (a zero regressor). A node sends ``w`` (``8 dim`` bytes) per
iteration. Cost per node: ``q (4 dim + 6) + 6 dim`` FLOPs for the projections
and their combination, ``dim log2 dim + 8 dim`` for the l1 projection, plus the
combination step.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd

from algorithms.base import Final, NoChecks
from algorithms.combine import combination_weights, combine, combine_flops
from algorithms.regression import EstimationRun, RegressionData, steady_msd_final
from algorithms.rounds import synchronous_rounds
from netsim import checks
from netsim.kernel import HostSetup, Kernel, KernelCall, Outputs, Payloads, Request

if TYPE_CHECKING:
    from netsim.simulation import Simulation

METRICS = ("euclidean", "proportionate")


# ---------------------------------------------------------------- projections
def hyperslab_projection(
    x: np.ndarray, u: np.ndarray, d: np.ndarray, eps: float, g: np.ndarray | None = None
) -> np.ndarray:
    """Project each row of ``x`` onto ``{w : |d - u^T w| <= eps}``.

    ``x``, ``u``: (..., m); ``d``: (...). In the metric ``||v||^2 = sum v_i^2 / g_i``
    when ``g`` (positive, like ``x``) is given: ``x + beta g*u`` with
    ``beta = (e -+ eps) / u^T (g*u)``, ``e = d - u^T x``. A zero regressor
    defines no constraint. O(m) per row.
    """
    e = d - np.sum(u * x, axis=-1)
    gu = u if g is None else g * u
    norm = np.sum(u * gu, axis=-1)
    safe = np.where(norm > 0, norm, 1.0)
    beta = np.where(e > eps, (e - eps) / safe, np.where(e < -eps, (e + eps) / safe, 0.0))
    beta = np.where(norm > 0, beta, 0.0)
    return x + beta[..., None] * gu


def weighted_l1_projection(
    x: np.ndarray, psi: np.ndarray, delta: float | np.ndarray, g: np.ndarray | None = None
) -> np.ndarray:
    """Project each row of ``x`` onto ``{z : sum_i psi_i |z_i| <= delta}``.

    The solution is a weighted soft threshold ``z_i = sign(x_i) max(|x_i| - lam g_i psi_i, 0)``
    with ``lam >= 0`` found by sorting the breakpoints ``|x_i| / (g_i psi_i)``
    (``g = 1``: Euclidean). ``psi > 0``. O(m log m) per row.
    """
    if x.ndim == 1:  # one vector: one row
        return weighted_l1_projection(x[None], psi[None], delta, None if g is None else g[None])[0]
    g = np.ones_like(x) if g is None else g
    a = np.abs(x)
    delta = np.broadcast_to(np.asarray(delta, dtype=float), x.shape[:-1])
    out = x.copy()
    outside = np.flatnonzero(np.sum(psi * a, axis=-1) > delta)  # rows to project
    if not len(outside):
        return out
    a, psi, gp, delta = a[outside], psi[outside], (g * psi)[outside], delta[outside]
    breakpoint_ = a / gp
    # the row's own data decide the order, so any host gives a row the same result
    order = np.argsort(-breakpoint_, axis=-1)
    r_s = np.take_along_axis(breakpoint_, order, axis=-1)
    lam_k = np.cumsum(np.take_along_axis(psi * a, order, axis=-1), axis=-1) - delta[:, None]
    lam_k /= np.cumsum(np.take_along_axis(psi * gp, order, axis=-1), axis=-1)
    # the threshold uses the largest k whose k-th breakpoint stays above lam_k
    valid = r_s > lam_k
    k = np.maximum(valid.shape[-1] - 1 - np.argmax(valid[:, ::-1], axis=-1), 0)
    lam = np.maximum(np.take_along_axis(lam_k, k[:, None], axis=-1), 0.0)
    out[outside] = np.sign(x[outside]) * np.maximum(a - lam * gp, 0.0)
    return out


def proportionate_metric(phi: np.ndarray, alpha: float) -> np.ndarray:
    """``g_i = (1 - alpha) / m + alpha |phi_i| / ||phi||_1`` per row (uniform when phi = 0)."""
    m = phi.shape[-1]
    l1 = np.sum(np.abs(phi), axis=-1, keepdims=True)
    share = np.where(l1 > 0, np.abs(phi) / np.where(l1 > 0, l1, 1.0), 1.0 / m)
    return (1 - alpha) / m + alpha * share


def apsm_step(
    phi: np.ndarray,
    u: np.ndarray,
    d: np.ndarray,
    *,
    mu: float,
    eps: float,
    delta: float,
    eps_hat: float,
    g: np.ndarray | None = None,
) -> np.ndarray:
    """One APSM update per row of ``phi`` (n, m) from samples ``u`` (n, q, m),
    ``d`` (n, q): extrapolated concurrent hyperslab projections, then the
    weighted l1-ball projection."""
    gq = None if g is None else g[:, None, :]
    steps = hyperslab_projection(phi[:, None, :], u, d, eps, gq) - phi[:, None, :]
    mean = steps.mean(axis=1)
    inv_g = np.ones_like(phi) if g is None else 1.0 / g  # squared norms in the metric
    num = np.mean(np.sum(steps * steps * inv_g[:, None, :], axis=-1), axis=1)
    den = np.sum(mean * mean * inv_g, axis=-1)
    extrapolation = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
    x = phi + (mu * extrapolation)[:, None] * mean
    psi = 1.0 / (np.abs(phi) + eps_hat)
    return weighted_l1_projection(x, psi, delta, g)


def apsm_flops(dim: int, q: int) -> float:
    """FLOPs of :func:`apsm_step` for one node (see the module docstring)."""
    return q * (4.0 * dim + 6) + 6.0 * dim + dim * math.log2(max(dim, 2)) + 8.0 * dim


# ---------------------------------------------------------------- the algorithm
@dataclass
class APSMState:
    w: np.ndarray  # (devices, dim)
    u: np.ndarray  # the q most recent regressors (devices, q, dim)
    d: np.ndarray  # and observations (devices, q)
    count: np.ndarray  # samples observed per device
    data: RegressionData
    self_weight: np.ndarray
    link_weight: np.ndarray


@dataclass(frozen=True)
class APSM(NoChecks):
    """Sparsity-aware APSM diffusion for ``iterations`` iterations."""

    dim: int = 100
    iterations: int = 2000
    nonzeros: int | None = None  # of the target (None: dense)
    mu: float = 0.5
    eps: float = 0.1
    q: int = 4
    delta: float | None = None  # l1 radius (None: nonzeros, or dim for a dense target)
    eps_hat: float = 0.01
    metric: Literal["euclidean", "proportionate"] = "euclidean"
    alpha: float = 0.5
    cooperative: bool = True
    combination_rule: str = "metropolis"
    period_s: float | None = None
    steady_fraction: float = 0.25

    name: ClassVar[str] = "apsm"
    needs_connected: ClassVar[bool] = False
    node_attributes: ClassVar[tuple[str, ...]] = ("noise_var", "regressor_var")

    def __post_init__(self) -> None:
        checks.positive_int("dim", self.dim)
        checks.positive_int("iterations", self.iterations)
        checks.number("mu", self.mu, low=0, high=2, low_open=True, high_open=True)
        checks.number("eps", self.eps, low=0)
        checks.positive_int("q", self.q)
        checks.number("eps_hat", self.eps_hat, low=0, low_open=True)
        checks.choice("metric", self.metric, METRICS)
        checks.number("alpha", self.alpha, low=0, high=1)
        checks.number("steady_fraction", self.steady_fraction, low=0, high=1, low_open=True)
        if self.delta is not None:
            checks.number("delta", self.delta, low=0, low_open=True)
        if self.nonzeros is not None:
            checks.positive_int("nonzeros", self.nonzeros)
        if self.period_s is not None:
            checks.number("period_s", self.period_s, low=0, low_open=True)

    @property
    def combination(self) -> str:
        return self.combination_rule

    @property
    def program(self) -> APSM:
        return self

    @property
    def radius(self) -> float:
        """The l1 radius ``delta`` in use."""
        if self.delta is not None:
            return self.delta
        return float(self.nonzeros if self.nonzeros is not None else self.dim)

    # ------------------------------------------------------------ host side
    def init_state(self, setup: HostSetup, rngs_: list[np.random.Generator]) -> APSMState:
        n = len(setup.devices)
        self_weight, link_weight = combination_weights(setup)
        return APSMState(
            w=np.zeros((n, self.dim)),
            u=np.zeros((n, self.q, self.dim)),
            d=np.zeros((n, self.q)),
            count=np.zeros(n, dtype=np.int64),
            data=RegressionData.build(setup, self.dim, self.nonzeros),
            self_weight=self_weight,
            link_weight=link_weight,
        )

    def kernel(self, name: str) -> Kernel:
        kernels: dict[str, Kernel] = {
            "start": _share,
            "step": self._step,
            "measure": _measure,
        }
        return kernels[name]

    def reset(self, state: APSMState, call: KernelCall) -> tuple[APSMState, Outputs]:
        return _reset(state, call)

    def cost(self, request: Request) -> np.ndarray:
        if request.kernel == "step":
            assert request.inbox is not None
            return self.step_flops(request.inbox.counts())
        return np.zeros(len(request.devices))

    def step_flops(self, heard: np.ndarray) -> np.ndarray:
        return combine_flops(self.dim, heard) + apsm_flops(self.dim, self.q)

    def _step(self, state: APSMState, call: KernelCall) -> tuple[APSMState, Outputs]:
        assert call.inbox is not None
        rows = call.idx
        phi = combine(state.w[rows], state.self_weight[rows], call.inbox, state.link_weight)
        u, d = state.data.sample(call.rows, int(call.params["data_index"]))
        slot = state.count[rows] % self.q  # the oldest sample makes room
        state.u[rows, slot] = u
        state.d[rows, slot] = d
        state.count[rows] += 1
        g = proportionate_metric(phi, self.alpha) if self.metric == "proportionate" else None
        state.w[rows] = apsm_step(
            phi,
            state.u[rows],
            state.d[rows],
            mu=self.mu,
            eps=self.eps,
            delta=self.radius,
            eps_hat=self.eps_hat,
            g=g,
        )
        return state, {
            "payload": Payloads.rows(state.w[rows].copy()),
            "err2": state.data.err2(state.w[rows]),
        }

    # ------------------------------------------------------------ driver side
    def protocol(self, sim: Simulation) -> Generator[Any, Any, None]:
        yield from synchronous_rounds(sim, EstimationRun(self, sim.n_nodes, combine_first=True))

    def final(self, metrics: pd.DataFrame) -> Final:
        return steady_msd_final(metrics, self.iterations, self.steady_fraction)


# ---------------------------------------------------------------- kernels
def _share(state: APSMState, call: KernelCall) -> tuple[APSMState, Outputs]:
    return state, {"payload": Payloads.rows(state.w[call.rows].copy())}


def _measure(state: APSMState, call: KernelCall) -> tuple[APSMState, Outputs]:
    return state, {"err2": state.data.err2(state.w[call.rows])}


def _reset(state: APSMState, call: KernelCall) -> tuple[APSMState, Outputs]:
    state.w[call.idx] = 0.0
    state.u[call.idx] = 0.0
    state.d[call.idx] = 0.0
    state.count[call.idx] = 0
    return state, {}
