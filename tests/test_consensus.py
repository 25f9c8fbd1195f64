"""Consensus and gossip against theory: the SLEM rate, mean preservation."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import netsim
from tests.conftest import build, weight_matrix
from topologies import slem


@pytest.mark.parametrize(
    ("topology", "nodes", "iterations"),
    [("erdos_renyi", 30, 60), ("ring", 20, 300), ("grid", 25, 200), ("small_world", 30, 150)],
)
@pytest.mark.parametrize("weights", ["metropolis", "laplacian"])
def test_error_decays_at_the_slem_rate(
    tmp_path, topology: str, nodes: int, iterations: int, weights: str
) -> None:
    """||x(t) - mean|| ~ SLEM(W)^t: the fitted slope of log error, over the
    middle of the run, is within 5% of log SLEM (Boyd et al. 2006)."""
    result = netsim.run(
        build(
            "consensus",
            topology=topology,
            nodes=nodes,
            iterations=iterations,
            weights=weights,
            seed=1,
        )
    )
    result.write(tmp_path / "run")
    graph = nx.read_graphml(tmp_path / "run" / "topology.graphml", node_type=int)
    rate = slem(weight_matrix(graph))  # recomputed from what the run wrote
    s = result.series("consensus_error")
    t, e = s["step"].to_numpy(), s["value"].to_numpy()
    window = (t >= 0.3 * iterations) & (t <= 0.9 * iterations) & (e > 1e-12)
    slope = np.polyfit(t[window], np.log(e[window]), 1)[0]
    assert slope / np.log(rate) == pytest.approx(1.0, abs=0.05)


def test_error_never_grows_without_failures() -> None:
    """With symmetric doubly stochastic W, ||x - mean|| is non-increasing."""
    e = (
        netsim.run(build("consensus", nodes=25, iterations=80))
        .series("consensus_error")["value"]
        .to_numpy()
    )
    assert e[0] == pytest.approx(1.0, rel=1e-12)
    assert np.all(np.diff(e) <= 1e-12)


def test_gossip_converges_to_the_initial_mean() -> None:
    """Each exchange moves equal and opposite amounts, so the mean is kept and
    the error (measured against the initial mean) goes to zero."""
    r = netsim.run(
        build("consensus", algorithm="gossip", nodes=12, iterations=200, topology="complete")
    )
    assert r.final["consensus_error"] < 1e-6
    assert r.summary["messages"]["dropped"] == 0


def test_consensus_under_churn_still_contracts() -> None:
    r = netsim.run(build("consensus", nodes=20, iterations=200, failures=0.2, mttr_s=0.02))
    m = r.summary["messages"]
    assert m["dropped"] > 0
    assert m["sent"] == m["delivered"] + m["dropped"] + m["in_flight"]
    assert r.final["consensus_error"] < 0.05


def test_disconnected_topology_is_refused(tmp_path) -> None:
    path = tmp_path / "two.edgelist"
    path.write_text("0 1\n2 3\n")
    with pytest.raises(
        netsim.InputError, match=r"disconnected \(2 components\); consensus needs a connected graph"
    ):
        netsim.run(build("consensus", topology=str(path)))
