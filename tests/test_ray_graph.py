"""Ray Compiled Graphs (the default, :mod:`actors.ray_graph`), over Unix
sockets (hosts on the driver's machine, :mod:`actors.ray_sockets`) and over
Ray's channels: the same results as inline, bit for bit, with payloads
exchanged host to host (synchronous rounds, gossip's asynchronous calls,
restarts); a dead host is a clear error; the actors go back to the pool
usable by ordinary calls."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest

import netsim
from actors.ray_graph import CompiledHosts
from algorithms.diffusion_lms import DiffusionLMS
from netsim import scenario_file
from netsim.errors import SimulationError
from netsim.kernel import Request
from tests.conftest import ROOT, build

CASES = {
    "gossip": ("consensus", {"nodes": 6, "iterations": 8, "algorithm": "gossip", "failures": 0.1}),
    "diffusion": (
        "diffusion_lms",
        {"nodes": 7, "iterations": 60, "failures": 0.2, "mttr_s": 0.05, "on_recover": "restart"},
    ),
}


TRANSPORTS = {"sockets": "1", "ray channels": "0"}  # NETSIM_RAY_SOCKETS


@pytest.mark.ray
@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_compiled_graph_matches_inline(
    ray_session: None, monkeypatch: pytest.MonkeyPatch, case: str, transport: str
) -> None:
    name, params = CASES[case]
    scenario = build(name, **params)
    inline = netsim.run(scenario)
    monkeypatch.setenv("NETSIM_RAY_GRAPH", "1")
    monkeypatch.setenv("NETSIM_RAY_SOCKETS", TRANSPORTS[transport])
    for hosts in (1, 3):
        result = netsim.run(scenario, backend="ray", hosts=hosts)
        assert result.summary["host_transport"] == transport
        assert result.metrics.equals(inline.metrics)
        assert result.summary["messages"] == inline.summary["messages"]
    monkeypatch.setenv("NETSIM_RAY_GRAPH", "0")
    again = netsim.run(scenario, backend="ray", hosts=3)  # the same actors, ordinary calls
    assert again.summary["hosts_reused"] == 3
    assert again.metrics.equals(inline.metrics)


@pytest.mark.ray
@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_a_dead_host_of_a_compiled_graph_is_a_clear_error(
    ray_session: None, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    monkeypatch.setenv("NETSIM_RAY_GRAPH", "1")
    monkeypatch.setenv("NETSIM_RAY_SOCKETS", TRANSPORTS[transport])
    scenario = scenario_file.load(ROOT / "tests" / "scenarios" / "crashing.py").build()
    with pytest.raises(SimulationError, match=r"Ray host \d of 2 \(.*\) died"):
        netsim.run(scenario, backend="ray", hosts=2)


@pytest.mark.ray
@pytest.mark.parametrize("hosts", [1, 2])
def test_calls_until_an_output_is_awaited_share_an_execution(
    ray_session: None, monkeypatch: pytest.MonkeyPatch, hosts: int
) -> None:
    """FedAvg's clients start training at different times and nobody reads
    their outputs before the server aggregates (the identity codec's sizes
    and FLOPs are said in advance): a round is 3 executions (the published
    model, the clients' training, the aggregation), not one per client."""
    monkeypatch.setenv("NETSIM_RAY_GRAPH", "1")
    kept: list[int] = []  # outputs the driver still held when the run ended
    teardown = CompiledHosts.teardown

    def counting_teardown(self: CompiledHosts) -> None:
        kept.append(len(self.done))
        teardown(self)

    monkeypatch.setattr(CompiledHosts, "teardown", counting_teardown)
    rounds = 3
    scenario = build("fedavg", clients=20, rounds=rounds, participation=0.5)
    inline = netsim.run(scenario)
    result = netsim.run(scenario, backend="ray", hosts=hosts)
    # the clients' outputs are never read: dropped with their futures, not kept
    assert kept and kept[0] <= 1
    assert result.metrics.equals(inline.metrics)
    assert result.summary["messages"] == inline.summary["messages"]
    assert result.summary["host_calls"] >= 1 + rounds * 12  # 10 clients train each round
    assert result.summary["graph_executions"] <= 1 + 3 * rounds


class _WrongFlops(DiffusionLMS):
    """Says its steps report 1 FLOP in advance; they report none."""

    def reported_flops(self, request: Request) -> np.ndarray | None:
        return np.ones(len(request.devices)) if request.kernel == "step" else None


@pytest.mark.ray
def test_outputs_said_in_advance_are_checked_on_the_hosts(
    ray_session: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nobody reads a step's reported FLOPs; the host's check still ends
    the run, at the next output the driver reads."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    monkeypatch.setenv("NETSIM_RAY_GRAPH", "1")
    scenario = build("diffusion_lms", nodes=6, iterations=4)
    fields = {f.name: getattr(scenario.algorithm, f.name) for f in dataclasses.fields(DiffusionLMS)}
    wrong = dataclasses.replace(scenario, algorithm=_WrongFlops(**fields))
    for backend, hosts in (("inline", None), ("ray", 2)):
        with pytest.raises(ValueError, match="'reported_flops' of the kernel differs from what"):
            netsim.run(wrong, backend=backend, hosts=hosts)


@pytest.mark.ray
def test_payloads_larger_than_a_socket_buffer_cross_both_ways(
    ray_session: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both hosts send each other an export of several MB (a socket buffer
    holds a few hundred kB) before either reads: neither waits on the other."""
    monkeypatch.setenv("NETSIM_RAY_GRAPH", "1")
    monkeypatch.setenv("NETSIM_RAY_SOCKETS", "1")
    scenario = build("diffusion_lms", nodes=8, iterations=3, dim=200_000)
    inline = netsim.run(scenario)
    result = netsim.run(scenario, backend="ray", hosts=2)
    assert result.summary["host_transport"] == "sockets"
    assert result.summary["messages_cross_hosts"] > 0
    assert result.metrics.equals(inline.metrics)


@pytest.mark.ray
def test_hosts_given_back_keep_no_socket_threads(
    ray_session: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host's threads reading its sockets end with the run: warm hosts
    do not gather threads from run to run."""
    import threading

    import ray

    from actors.ray_pool import POOL

    monkeypatch.setenv("NETSIM_RAY_GRAPH", "1")
    monkeypatch.setenv("NETSIM_RAY_SOCKETS", "1")
    scenario = build("diffusion_lms", nodes=12, iterations=3)
    for _ in range(2):
        assert netsim.run(scenario, backend="ray", hosts=2).summary["host_transport"] == "sockets"

    def threads(_: object) -> list[str]:
        return [t.name for t in threading.enumerate()]

    names = ray.get([a.__ray_call__.remote(threads) for a in POOL.idle()])
    assert len(names) >= 2
    assert not [n for host in names for n in host if "_drain" in n]
