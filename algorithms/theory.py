"""Closed-form and Lyapunov predictions to validate simulations against
(``papers.md`` section 2; Sayed, "Adaptation, Learning, and Optimization over
Networks", 2014).

Notation: ``A`` left-stochastic (``A[l, k] = a_lk``), ``mu``/``noise_var``
per node, ``R_k`` the regressor covariance of node ``k`` (``M x M``).
"""

from __future__ import annotations

import numpy as np
from scipy import linalg


def diffusion_msd(
    a: np.ndarray,
    mu: np.ndarray,
    noise_var: np.ndarray,
    regressor_cov: np.ndarray,
    strategy: str = "atc",
) -> float:
    """Steady-state network MSD (linear) of diffusion LMS, small-step-size
    Lyapunov form.

    With ``𝒜 = A ⊗ I_M``, ``ℳ = diag(mu_k I)``, ``ℛ = diag(R_k)`` and
    ``𝒮 = diag(noise_var_k R_k)``, solve ``Σ = B Σ B^T + Y`` with

    - ATC: ``B = 𝒜^T (I - ℳℛ)``, ``Y = 𝒜^T ℳ 𝒮 ℳ 𝒜``;
    - CTA: ``B = (I - ℳℛ) 𝒜^T``, ``Y = ℳ 𝒮 ℳ``;
    - noncoop: ``A = I``;

    and return ``Tr(Σ) / N``. ``regressor_cov`` is ``(N, M, M)``. The fourth-order
    moment terms are neglected (accurate for small ``mu``). Cost O((N M)^3).
    """
    n = a.shape[0]
    m = regressor_cov.shape[1]
    if strategy == "noncoop":
        a = np.eye(n)
    big_a = np.kron(a, np.eye(m))
    big_m = np.kron(np.diag(mu), np.eye(m))
    big_r = linalg.block_diag(*regressor_cov)
    big_s = linalg.block_diag(*(s * r for s, r in zip(noise_var, regressor_cov, strict=True)))
    i_mr = np.eye(n * m) - big_m @ big_r
    if strategy == "cta":
        b = i_mr @ big_a.T
        y = big_m @ big_s @ big_m
    else:
        b = big_a.T @ i_mr
        y = big_a.T @ big_m @ big_s @ big_m @ big_a
    sigma = linalg.solve_discrete_lyapunov(b, y)
    return float(np.trace(sigma)) / n


def diffusion_msd_small_mu(
    a: np.ndarray, mu: np.ndarray, noise_var: np.ndarray, regressor_cov: np.ndarray
) -> float:
    """First-order approximation ``1/2 Tr[(sum q_k R_k)^-1 (sum q_k^2 s_k^2 R_k)]``
    with ``q = mu * p`` and ``p`` the Perron vector of ``A`` (``A p = p``, ``sum p = 1``)."""
    values, vectors = np.linalg.eig(a)
    p = np.real(vectors[:, np.argmin(np.abs(values - 1))])
    p = p / p.sum()
    q = mu * p
    lhs = np.einsum("k,kij->ij", q, regressor_cov)
    rhs = np.einsum("k,kij->ij", q**2 * noise_var, regressor_cov)
    return 0.5 * float(np.trace(np.linalg.solve(lhs, rhs)))


def to_db(value: float) -> float:
    return 10.0 * float(np.log10(value))
