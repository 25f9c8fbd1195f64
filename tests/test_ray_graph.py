"""Ray Compiled Graphs (the default, :mod:`actors.ray_graph`): the
same results as inline, bit for bit, with payloads exchanged host to host
(synchronous rounds, gossip's asynchronous calls, restarts); a dead host is
a clear error; the actors go back to the pool usable by ordinary calls."""

from __future__ import annotations

import pytest

import netsim
from netsim import scenario_file
from netsim.errors import SimulationError
from tests.conftest import ROOT, build

CASES = {
    "gossip": ("consensus", {"nodes": 6, "iterations": 8, "algorithm": "gossip", "failures": 0.1}),
    "diffusion": (
        "diffusion_lms",
        {"nodes": 7, "iterations": 60, "failures": 0.2, "mttr_s": 0.05, "on_recover": "restart"},
    ),
}


@pytest.mark.ray
@pytest.mark.parametrize("case", sorted(CASES))
def test_compiled_graph_matches_inline(
    ray_session: None, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    name, params = CASES[case]
    scenario = build(name, **params)
    inline = netsim.run(scenario)
    monkeypatch.setenv("NETSIM_RAY_GRAPH", "1")
    for hosts in (1, 3):
        result = netsim.run(scenario, backend="ray", hosts=hosts)
        assert result.metrics.equals(inline.metrics)
        assert result.summary["messages"] == inline.summary["messages"]
    monkeypatch.setenv("NETSIM_RAY_GRAPH", "0")
    again = netsim.run(scenario, backend="ray", hosts=3)  # the same actors, ordinary calls
    assert again.summary["hosts_reused"] == 3
    assert again.metrics.equals(inline.metrics)


@pytest.mark.ray
def test_a_dead_host_of_a_compiled_graph_is_a_clear_error(
    ray_session: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETSIM_RAY_GRAPH", "1")
    scenario = scenario_file.load(ROOT / "tests" / "scenarios" / "crashing.py").build()
    with pytest.raises(SimulationError, match=r"Ray host \d of 2 \(.*\) died"):
        netsim.run(scenario, backend="ray", hosts=2)
