"""Sparse system identification over a diffusion network: APSM (Chouvardas et
al. 2012) against ATC diffusion LMS and the zero-attracting sparse diffusion
LMS of Di Lorenzo & Sayed (ZA, RZA), on the same target, data, topology and
failures (separate random streams per purpose: only ``algorithm`` changes).

    netsim run scenarios/sparse_diffusion.py --set algorithm=apsm --out runs/apsm
    netsim run scenarios/sparse_diffusion.py --set algorithm=rza --out runs/rza
    netsim plot runs/apsm runs/rza --metric msd_db -o msd.png

Hyper-parameters left at ``none`` take the values of the search documented in
docs/apsm.md (bench/tune_sparse.py: the lowest steady-state MSD among settings
that converge within 400 iterations, for every method). ``nonzeros=dim`` gives
a dense target. ``final.msd_db`` is the network MSD averaged over the last 25%
of iterations (linear domain, then dB). ``failures`` makes a
``failing_fraction`` of the nodes churn, down that fraction of the time.
"""

from typing import Literal

import netsim
import topologies
from algorithms import APSM, DiffusionLMS, assign_node_parameters
from algorithms.regression import assign_data_parameters
from netsim import rng

# the outcome of bench/tune_sparse.py (20 nodes, dim 100, 5 non-zeros, noise 0.01, seed 0)
TUNED: dict[str, dict[str, float]] = {
    "atc": {"mu": 0.015},
    "za": {"mu": 0.015, "rho": 3e-3},
    "rza": {"mu": 0.015, "rho": 1e-3},
    "apsm": {"q": 8, "apsm_eps": 0.1, "apsm_mu": 0.5, "eps_hat": 0.01},
}


def scenario(
    nodes: int = 20,
    topology: str = "erdos_renyi",
    dim: int = 100,
    nonzeros: int = 5,
    noise_var: float = 0.01,
    iterations: int = 2000,
    algorithm: Literal["apsm", "apsm_noncoop", "atc", "za", "rza"] = "apsm",
    mu: float | None = None,
    rho: float | None = None,
    rza_eps: float = 0.1,
    apsm_mu: float | None = None,
    apsm_eps: float | None = None,
    q: int | None = None,
    delta: float | None = None,
    eps_hat: float | None = None,
    metric: Literal["euclidean", "proportionate"] = "euclidean",
    failures: float = 0.0,
    failing_fraction: float = 1.0,
    mttr_s: float = 0.5,
    seed: int = 0,
) -> netsim.Scenario:
    tuned = TUNED["apsm" if algorithm.startswith("apsm") else algorithm]
    given = {
        "mu": mu,
        "rho": rho,
        "apsm_mu": apsm_mu,
        "apsm_eps": apsm_eps,
        "q": q,
        "eps_hat": eps_hat,
    }
    p = {k: (v if v is not None else tuned.get(k)) for k, v in given.items()}
    graph = topologies.build(topology, nodes, seed=rng.int_seed(seed, "topology"))
    topologies.assign_devices(graph, "homogeneous", seed=seed)
    topologies.assign_links(graph, seed=seed)
    algo: APSM | DiffusionLMS
    if algorithm in ("apsm", "apsm_noncoop"):
        assign_data_parameters(graph, noise_var=noise_var, seed=seed)
        algo = APSM(
            dim=dim,
            iterations=iterations,
            nonzeros=nonzeros,
            mu=p["apsm_mu"],
            eps=p["apsm_eps"],
            q=int(p["q"]),
            delta=delta,
            eps_hat=p["eps_hat"],
            metric=metric,
            cooperative=algorithm == "apsm",
        )
    else:
        assign_node_parameters(graph, mu=p["mu"], noise_var=noise_var, seed=seed)
        algo = DiffusionLMS(
            dim=dim,
            iterations=iterations,
            nonzeros=nonzeros,
            penalty="none" if algorithm == "atc" else algorithm,
            rho=p["rho"] or 0.0,
            penalty_eps=rza_eps,
        )
    churn = netsim.Churn.from_downtime(failures, mttr_s, fraction=failing_fraction)
    return netsim.Scenario(
        name="sparse_diffusion",
        graph=graph,
        algorithm=algo,
        seed=seed,
        failures=netsim.Failures(churn=churn),
    )
