"""Same seed, same result: run after run, inline and on Ray, with any number of hosts."""

from __future__ import annotations

import time

import pytest

import netsim
from netsim import scenario_file
from netsim.errors import SimulationError
from tests.conftest import ROOT, build

CASES = {
    "consensus": ("consensus", {"nodes": 7, "iterations": 40, "failures": 0.2, "mttr_s": 0.02}),
    "gossip": (
        "consensus",
        {"nodes": 6, "iterations": 8, "algorithm": "gossip", "failures": 0.1, "mttr_s": 1.0},
    ),
    "diffusion": (
        "diffusion_lms",
        {
            "nodes": 7,
            "iterations": 150,
            "failures": 0.2,
            "mttr_s": 0.05,
            "devices": "mixed",
            "on_recover": "restart",
        },
    ),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> tuple[netsim.Scenario, netsim.Result]:
    name, params = CASES[request.param]
    scenario = build(name, **params)
    return scenario, netsim.run(scenario)


def test_run_after_run(case: tuple[netsim.Scenario, netsim.Result]) -> None:
    scenario, first = case
    assert first.summary["failures"] > 0 and first.summary["messages"]["dropped"] > 0
    again = netsim.run(scenario)
    assert again.metrics.equals(first.metrics)
    assert again.failures == first.failures


def test_another_seed_gives_another_run() -> None:
    name, params = CASES["diffusion"]
    a = netsim.run(build(name, **params, seed=1))
    b = netsim.run(build(name, **params, seed=2))
    assert not a.metrics.equals(b.metrics)


def test_sharding_inline_does_not_change_results(
    case: tuple[netsim.Scenario, netsim.Result],
) -> None:
    scenario, first = case
    assert netsim.run(scenario, hosts=3).metrics.equals(first.metrics)


@pytest.mark.ray
@pytest.mark.parametrize(
    "hosts",
    [1, 3, "per-device", None],
    ids=["1-host", "3-hosts", "actor-per-device", "default-one-per-cpu"],
)
def test_ray_matches_inline(
    ray_session: None, case: tuple[netsim.Scenario, netsim.Result], hosts: int | str | None
) -> None:
    scenario, first = case
    result = netsim.run(scenario, backend="ray", hosts=hosts)  # type: ignore[arg-type]
    assert result.summary["backend"] == "ray"
    if hosts == "per-device":
        assert result.summary["hosts"] == result.summary["nodes"]
    elif hosts is None:  # one per CPU: the session's Ray instance has 2
        assert result.summary["hosts"] == 2
        assert result.summary["hosts_chosen"] == "one per CPU of the cluster (2)"
    else:
        assert result.summary["hosts"] == hosts
    assert result.metrics.equals(first.metrics)
    assert result.failures == first.failures
    assert result.summary["messages"] == first.summary["messages"]


@pytest.mark.ray
def test_dead_ray_host_ends_the_run_with_a_clear_error(ray_session: None) -> None:
    scenario = scenario_file.load(ROOT / "tests" / "scenarios" / "crashing.py").build()
    start = time.monotonic()
    with pytest.raises(
        SimulationError, match=r"Ray host \d of 2 \((devices \d\.\.\d|3 devices: [\d, ]+)\) died"
    ):
        netsim.run(scenario, backend="ray", hosts=2)
    assert time.monotonic() - start < 60  # an error, not a hang
