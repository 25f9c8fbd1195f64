"""The projections of APSM: in the set, idempotent, non-expansive, and equal
to a convex solver's answer on small cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import optimize

from algorithms.apsm import (
    apsm_step,
    hyperslab_projection,
    proportionate_metric,
    weighted_l1_projection,
)

finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
positive = st.floats(0.05, 10, allow_nan=False)


def vec(m: int, elements: st.SearchStrategy[float] = finite) -> st.SearchStrategy[np.ndarray]:
    return arrays(np.float64, (m,), elements=elements)


def metric_norm(v: np.ndarray, g: np.ndarray | None) -> float:
    return float(np.sqrt(np.sum(v * v / (1.0 if g is None else g))))


# ------------------------------------------------------------------ hyperslab
@settings(max_examples=300, deadline=None)
@given(
    vec(6),
    vec(6),
    vec(6, st.floats(-5, 5).filter(lambda v: abs(v) > 0.1)),
    finite,
    st.floats(0, 3),
    st.one_of(st.none(), vec(6, positive)),
)
def test_hyperslab_projection(
    x: np.ndarray, y: np.ndarray, u: np.ndarray, d: float, eps: float, g: np.ndarray | None
) -> None:
    px = hyperslab_projection(x, u, np.float64(d), eps, g)
    py = hyperslab_projection(y, u, np.float64(d), eps, g)
    assert abs(d - u @ px) <= eps + 1e-9 * (1 + abs(d))  # in the set
    np.testing.assert_allclose(hyperslab_projection(px, u, np.float64(d), eps, g), px, atol=1e-9)
    assert metric_norm(px - py, g) <= metric_norm(x - y, g) + 1e-9  # non-expansive
    # optimality: the move is along G u (the metric's normal), and only when outside
    move = px - x
    gu = u if g is None else g * u
    if abs(d - u @ x) <= eps:
        np.testing.assert_allclose(move, 0, atol=1e-12)
    else:
        coef = (move @ gu) / (gu @ gu)
        np.testing.assert_allclose(move, coef * gu, atol=1e-9)


def test_zero_regressor_is_no_constraint() -> None:
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(hyperslab_projection(x, np.zeros(2), np.float64(5.0), 0.1), x)


# ------------------------------------------------------------------ weighted l1 ball
def solver_projection(
    x: np.ndarray, psi: np.ndarray, delta: float, g: np.ndarray | None
) -> np.ndarray:
    """The same projection from a general solver: z = p - n, p, n >= 0,
    minimize sum (z - x)^2 / g subject to sum psi (p + n) <= delta."""
    m = len(x)
    w = np.ones(m) if g is None else 1.0 / g

    def objective(v: np.ndarray) -> float:
        z = v[:m] - v[m:]
        return float(np.sum(w * (z - x) ** 2))

    def jac(v: np.ndarray) -> np.ndarray:
        grad = 2 * w * (v[:m] - v[m:] - x)
        return np.concatenate([grad, -grad])

    constraint = {
        "type": "ineq",
        "fun": lambda v: delta - psi @ (v[:m] + v[m:]),
        "jac": lambda v: -np.concatenate([psi, psi]),
    }
    bounds = [(0, None)] * (2 * m)
    start = np.zeros(2 * m)  # feasible
    res = optimize.minimize(
        objective,
        start,
        jac=jac,
        method="SLSQP",
        bounds=bounds,
        constraints=[constraint],
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    if not res.success:  # SLSQP can stall on symmetric cases: a second solver
        res = optimize.minimize(
            objective,
            start,
            jac=jac,
            method="trust-constr",
            bounds=optimize.Bounds(0, np.inf),
            constraints=[
                optimize.LinearConstraint(np.concatenate([psi, psi])[None, :], -np.inf, delta)
            ],
            options={"gtol": 1e-10, "xtol": 1e-12, "maxiter": 400},
        )
    return res.x[:m] - res.x[m:]


@pytest.mark.filterwarnings("ignore::UserWarning")  # the reference solver's own warnings
@settings(max_examples=100, deadline=None)
@given(vec(5), vec(5, positive), st.floats(0.1, 20), st.one_of(st.none(), vec(5, positive)))
def test_weighted_l1_projection_beats_a_solver(
    x: np.ndarray, psi: np.ndarray, delta: float, g: np.ndarray | None
) -> None:
    """The projection is the unique minimizer of the distance over the ball: it
    is feasible and no general-purpose solver finds a closer feasible point."""
    z = weighted_l1_projection(x, psi, delta, g)
    assert psi @ np.abs(z) <= delta * (1 + 1e-12) + 1e-12  # in the ball
    np.testing.assert_allclose(weighted_l1_projection(z, psi, delta, g), z, atol=1e-9)  # idempotent
    ref = solver_projection(x, psi, delta, g)
    w = 1.0 if g is None else 1.0 / g
    ref_feasible = psi @ np.abs(ref) <= delta * (1 + 1e-6)
    mine, theirs = float(np.sum(w * (z - x) ** 2)), float(np.sum(w * (ref - x) ** 2))
    if ref_feasible:
        assert mine <= theirs * (1 + 1e-9) + 1e-12
    # The minimizer is unique, so a solver that reaches its distance reaches
    # the same point. (The solver sometimes stops short: feasible, but up to a
    # few tenths of a percent farther, e.g. x = (0, 0.7, 0, -5.14, 0), psi =
    # (0.05, 0.7, 0.05, 0.05, 0.05), delta = 0.1.)
    if ref_feasible and theirs <= mine * (1 + 1e-6) + 1e-9:
        scale = 1 + float(np.max(np.abs(x)))
        np.testing.assert_allclose(z, ref, atol=1e-3 * scale)


@settings(max_examples=200, deadline=None)
@given(vec(8), vec(8), vec(8, positive), st.floats(0.1, 20))
def test_weighted_l1_projection_is_non_expansive(
    x: np.ndarray, y: np.ndarray, psi: np.ndarray, delta: float
) -> None:
    zx, zy = weighted_l1_projection(x, psi, delta), weighted_l1_projection(y, psi, delta)
    assert np.linalg.norm(zx - zy) <= np.linalg.norm(x - y) + 1e-9


def test_l1_projection_rows_are_independent() -> None:
    """A batch gives every row the result it gets alone (hosts may batch differently)."""
    rng = np.random.default_rng(0)
    x, psi = rng.standard_normal((50, 30)), rng.uniform(0.1, 5, (50, 30))
    batch = weighted_l1_projection(x, psi, 3.0)
    for i in range(50):
        assert np.array_equal(
            batch[i], weighted_l1_projection(x[i : i + 1], psi[i : i + 1], 3.0)[0]
        )


def test_unit_l1_ball_matches_the_classic_soft_threshold() -> None:
    x = np.array([3.0, -1.0, 0.5, 0.0])
    z = weighted_l1_projection(x, np.ones(4), 2.0)
    # lam = 1: only the first entry survives the threshold... (3 - lam) + (1 - lam) = 2 -> lam = 1
    np.testing.assert_allclose(z, [2.0, 0.0, 0.0, 0.0])


# ------------------------------------------------------------------ the APSM step
def test_proportionate_metric_sums_to_one() -> None:
    phi = np.array([[0.0, 2.0, -2.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    g = proportionate_metric(phi, 0.5)
    np.testing.assert_allclose(g.sum(axis=1), 1.0)
    np.testing.assert_allclose(g[1], 0.25)


def test_apsm_step_moves_into_the_intersection_when_consistent() -> None:
    """With noiseless samples and eps = 0, repeated steps on a fixed set of
    regressors converge to a point that satisfies every constraint."""
    rng = np.random.default_rng(1)
    w_true = np.zeros(10)
    w_true[[2, 7]] = [1.0, -0.5]
    u = rng.standard_normal((1, 4, 10))
    d = u @ w_true
    w = np.zeros((1, 10))
    for _ in range(500):
        w = apsm_step(w, u, d, mu=1.0, eps=0.0, delta=50.0, eps_hat=0.01)
    np.testing.assert_allclose(u[0] @ w[0], d[0], atol=1e-6)


def test_extrapolation_is_at_least_one() -> None:
    """M_n >= 1 (convexity): the combined move is never shorter than the average."""
    rng = np.random.default_rng(2)
    for _ in range(20):
        phi = rng.standard_normal((1, 6))
        u, d = rng.standard_normal((1, 3, 6)), rng.standard_normal((1, 3))
        plain = phi + 0.5 * (
            hyperslab_projection(phi[:, None, :], u, d, 0.1) - phi[:, None, :]
        ).mean(1)
        full = apsm_step(phi, u, d, mu=0.5, eps=0.1, delta=1e9, eps_hat=1.0)
        assert np.linalg.norm(full - phi) >= np.linalg.norm(plain - phi) - 1e-12
