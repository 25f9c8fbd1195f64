"""Diffusion LMS against the steady-state theory of papers.md section 2."""

from __future__ import annotations

import dataclasses
import math
from functools import cache
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import netsim
from algorithms.diffusion_lms import DiffusionLMS
from algorithms.theory import diffusion_msd, diffusion_msd_small_mu, to_db
from netsim.kernel import Request
from tests.conftest import build, weight_matrix

N, DIM, ITERATIONS, STEADY_FROM = 20, 10, 6000, 1500
SEEDS = (0, 1)


def theory_db(run_dir: Path, strategy: str) -> float:
    """Lyapunov-form MSD recomputed from the run's topology.graphml."""
    g = nx.read_graphml(run_dir / "topology.graphml", node_type=int)
    n = g.number_of_nodes()
    mu = np.array([g.nodes[k]["mu"] for k in range(n)])
    noise = np.array([g.nodes[k]["noise_var"] for k in range(n)])
    cov = np.array([g.nodes[k]["regressor_var"] * np.eye(DIM) for k in range(n)])
    return to_db(diffusion_msd(weight_matrix(g), mu, noise, cov, strategy))


def steady_db(result: netsim.Result) -> float:
    """Network MSD averaged over iterations after STEADY_FROM (linear domain)."""
    s = result.series("msd_db")
    return float(np.mean(10 ** (s[s["step"] > STEADY_FROM]["value"] / 10)))


@cache
def simulate(
    topology: str, strategy: str, combination: str, noise_spread: float, tmp: str
) -> tuple[float, float]:
    """(simulated, theoretical) steady-state MSD in dB, over SEEDS."""
    linear, theory = [], []
    for seed in SEEDS:
        r = netsim.run(
            build(
                "diffusion_lms",
                nodes=N,
                dim=DIM,
                iterations=ITERATIONS,
                topology=topology,
                strategy=strategy,
                combination=combination,
                noise_spread=noise_spread,
                seed=seed,
            )
        )
        out = r.write(Path(tmp) / f"{topology}-{strategy}-{combination}-{noise_spread}-{seed}")
        linear.append(steady_db(r))
        theory.append(theory_db(out, strategy))
    return to_db(float(np.mean(linear))), float(np.mean(theory))


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("diffusion"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("topology", "combination", "noise_spread"),
    [
        ("erdos_renyi", "metropolis", 1.0),
        ("ring", "metropolis", 1.0),
        ("erdos_renyi", "uniform", 10.0),
    ],
)
@pytest.mark.parametrize("strategy", ["atc", "cta"])
def test_steady_state_msd_within_1_db_of_theory(
    tmp: str, topology: str, strategy: str, combination: str, noise_spread: float
) -> None:
    sim, theory = simulate(topology, strategy, combination, noise_spread, tmp)
    assert abs(sim - theory) < 1.0, f"simulated {sim:.2f} dB, theory {theory:.2f} dB"


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["atc", "cta"])
def test_cooperation_gains_about_10_log10_n_db(tmp: str, strategy: str) -> None:
    """With equal noise and doubly stochastic weights, diffusion divides the
    non-cooperative MSD by about N (papers.md: mu M s^2 / 2N versus mu M s^2 / 2).

    That is the first-order (small mu) value; at mu = 0.01 CTA keeps an extra
    O(mu^2) term (its estimate is read after the local update, before
    averaging), which the Lyapunov form predicts. So: the measured gain equals
    the theoretical one within 0.5 dB, and is within 1.5 dB of 10 log10 N."""
    coop, coop_theory = simulate("erdos_renyi", strategy, "metropolis", 1.0, tmp)
    alone, alone_theory = simulate("erdos_renyi", "noncoop", "metropolis", 1.0, tmp)
    gain, theory_gain = alone - coop, alone_theory - coop_theory
    assert gain == pytest.approx(theory_gain, abs=0.5)
    assert gain == pytest.approx(10 * math.log10(N), abs=1.5)


@pytest.mark.parametrize("strategy", ["atc", "cta"])
def test_theoretical_gain_tends_to_10_log10_n_for_small_steps(strategy: str) -> None:
    g = nx.random_regular_graph(4, N, seed=2)
    from topologies.weights import metropolis

    a = metropolis(g).matrix()
    mu, noise = np.full(N, 1e-4), np.full(N, 0.01)
    cov = np.array([np.eye(4) for _ in range(N)])
    gain = to_db(diffusion_msd(a, mu, noise, cov, "noncoop")) - to_db(
        diffusion_msd(a, mu, noise, cov, strategy)
    )
    assert gain == pytest.approx(10 * math.log10(N), abs=0.1)


def test_lyapunov_form_agrees_with_closed_forms() -> None:
    rng = np.random.default_rng(0)
    g = nx.connected_watts_strogatz_graph(12, 4, 0.3, seed=1)
    from topologies.weights import metropolis

    a = metropolis(g).matrix()
    mu = np.full(12, 1e-3)
    noise = rng.uniform(0.005, 0.02, 12)
    cov = np.array([np.eye(3) for _ in range(12)])
    lyap = diffusion_msd(a, mu, noise, cov, "atc")
    assert to_db(lyap) == pytest.approx(to_db(diffusion_msd_small_mu(a, mu, noise, cov)), abs=0.05)
    # doubly stochastic A, R = I, equal noise: mu M s^2 / (2N)
    equal = diffusion_msd(a, mu, np.full(12, 0.01), cov, "atc")
    assert equal == pytest.approx(1e-3 * 3 * 0.01 / (2 * 12), rel=0.02)


def test_diffusion_keeps_converging_under_churn() -> None:
    base = build("diffusion_lms", nodes=20, iterations=2000)
    churn = build("diffusion_lms", nodes=20, iterations=2000, failures=0.1, mttr_s=0.2)
    a, b = netsim.run(base), netsim.run(churn)
    assert b.summary["failures"] > 20
    assert b.final["msd_db"] < a.final["msd_db"] + 3
    m = b.summary["messages"]
    assert m["dropped"] > 0 and m["sent"] == m["delivered"] + m["dropped"] + m["in_flight"]


def test_per_node_msd_reported_at_the_end() -> None:
    r = netsim.run(build("diffusion_lms", nodes=8, iterations=400))
    final = r.metrics[(r.metrics["metric"] == "msd_db") & (r.metrics["node"] >= 0)]
    assert sorted(final["node"]) == list(range(8))
    assert (final["step"] == 400).all()
    # the network steady state is the mean of the per-node steady states (linear)
    per_node = np.mean(10 ** (final["value"].to_numpy() / 10))
    assert to_db(per_node) == pytest.approx(r.final["msd_db"], abs=1e-9)


def test_the_steady_msd_says_when_its_window_is_still_falling() -> None:
    import pandas as pd

    from algorithms.regression import steady_msd_final

    def frame(values: np.ndarray) -> pd.DataFrame:
        n = len(values)
        return pd.DataFrame(
            {
                "time": np.arange(n, dtype=float),
                "step": np.arange(n),
                "node": -1,
                "metric": "msd_db",
                "value": values,
            }
        )

    rng = np.random.default_rng(0)
    flat = -40 + rng.normal(0, 1.0, 401)
    falling = np.linspace(0, -60, 401)
    assert "NOT steady" not in steady_msd_final(frame(flat), 400, 0.25).notes["msd_db"]
    note = steady_msd_final(frame(falling), 400, 0.25).notes["msd_db"]
    assert "NOT steady: its second half is 7.5 dB below its first" in note


class _WrongSizes(DiffusionLMS):
    """Says 8 bytes a payload row in advance, then sends ``dim`` floats."""

    def payload_nbytes(self, request: Request) -> dict[str, np.ndarray]:
        return {"payload": np.full(len(request.devices), 8, dtype=np.int64)}


def test_payload_sizes_said_in_advance_are_checked() -> None:
    scenario = build("diffusion_lms", nodes=6, iterations=3)
    algo = scenario.algorithm
    wrong = _WrongSizes(**{f.name: getattr(algo, f.name) for f in dataclasses.fields(algo)})
    with pytest.raises(ValueError, match="differs from what its program said before it ran"):
        netsim.run(dataclasses.replace(scenario, algorithm=wrong))
