"""Devices on the clock: one job at a time, time accounting, energy by cause,
and batteries that run out (recorded and replayed like any failure)."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netsim
from netsim.traces import FailureEvent, read_trace
from tests.conftest import build
from tests.offload import Offload

FAST = 1e30  # bytes/s: transfers take no measurable time


def star(clients: int, server_flops: float = 1e9, **node: float) -> nx.Graph:
    """A star of ``clients`` around server 0 with instant links."""
    g = nx.star_graph(clients)
    for k in g.nodes:
        g.nodes[k].update(
            compute_flops=server_flops if k == 0 else 1e9,
            uplink_Bps=FAST,
            downlink_Bps=FAST,
            energy_per_flop_J=1e-9,
            energy_tx_per_byte_J=1e-7,
            energy_rx_per_byte_J=5e-8,
            idle_power_W=0.5,
        )
        g.nodes[k].update(node)
    for u, v in g.edges:
        g.edges[u, v].update(latency_s=0.0, bandwidth_Bps=FAST, loss=0.0)
    return g


def per_node(result: netsim.Result) -> pd.DataFrame:
    m = result.metrics
    last = m[m.node >= 0].drop_duplicates(["node", "metric"], keep="last")
    return last.pivot(index="node", columns="metric", values="value")


def run(graph: nx.Graph, algo: Offload, **failures: object) -> netsim.Result:
    scenario = netsim.Scenario("offload", graph, algo, failures=netsim.Failures(**failures))
    return netsim.run(scenario)


# ------------------------------------------------------------------ the queue
def test_a_vanishing_downtime_is_refused_with_its_own_name() -> None:
    with pytest.raises(netsim.InputError, match="failures: a fraction of time down of 5e-324"):
        netsim.Churn.from_downtime(5e-324, 1.0)


def test_five_offloads_to_one_server_run_one_after_another() -> None:
    """Five 4-GFLOP jobs reach a 1 GFLOP/s server at t = 0: they finish at
    4, 8, 12, 16 and 20 s, and the server is busy exactly 20 s."""
    r = run(star(5), Offload(job_flops=4e9))
    arrivals = sorted(r.series("reply_arrival_s", node=k)["value"].iloc[0] for k in range(1, 6))
    assert arrivals == pytest.approx([4.0, 8.0, 12.0, 16.0, 20.0], rel=1e-12)
    server = per_node(r).loc[0]
    assert server["busy_s"] == pytest.approx(20.0, rel=1e-12)
    assert server["idle_s"] >= 0
    assert server["busy_s"] + server["idle_s"] == pytest.approx(r.summary["sim_time"], rel=1e-12)


def test_a_failure_stops_the_running_job_and_loses_the_queue() -> None:
    """Down at 6 s, back at 7 s: the job running since 4 s stops after 2 s
    (half its FLOPs done), the three still queued never run."""
    events = (FailureEvent(6.0, "node:0", "down"), FailureEvent(7.0, "node:0", "up"))
    r = run(star(5), Offload(job_flops=4e9), events=events)
    assert r.final["replies"] == 1
    server = per_node(r).loc[0]
    assert server["busy_s"] == pytest.approx(6.0, rel=1e-12)
    assert server["flops"] == pytest.approx(6e9, rel=1e-12)
    assert server["down_s"] == pytest.approx(1.0, rel=1e-12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    clients=st.integers(1, 5),
    budgets=st.lists(st.floats(1e8, 1e10), min_size=6, max_size=6),
    job=st.floats(1e7, 5e9),
    starts=st.lists(st.floats(0, 10), min_size=1, max_size=3),
    downtime=st.one_of(st.just(0.0), st.floats(0.01, 0.5)),
    mttr=st.floats(0.2, 3),
    seed=st.integers(0, 1000),
)
def test_busy_plus_idle_is_the_simulated_time(
    clients: int,
    budgets: list[float],
    job: float,
    starts: list[float],
    downtime: float,
    mttr: float,
    seed: int,
) -> None:
    g = star(clients, server_flops=budgets[0])
    for k in range(1, clients + 1):
        g.nodes[k]["compute_flops"] = budgets[k]
    algo = Offload(job_flops=job, starts=tuple(sorted(starts)))
    churn = netsim.Churn.from_downtime(downtime, mttr)
    scenario = netsim.Scenario("offload", g, algo, seed=seed, failures=netsim.Failures(churn=churn))
    r = netsim.run(scenario)
    t = r.summary["sim_time"]
    nodes = per_node(r)
    assert np.allclose(nodes["busy_s"] + nodes["idle_s"], t, rtol=1e-12, atol=0)
    assert (nodes["idle_s"] >= -1e-12 * t).all()
    assert (nodes["down_s"] <= nodes["idle_s"] + 1e-12 * max(t, 1)).all()
    budget = np.array([g.nodes[k]["compute_flops"] for k in nodes.index])
    assert (nodes["flops"] <= nodes["busy_s"] * budget * (1 + 1e-9)).all()
    m = r.summary["messages"]
    assert m["sent"] == m["delivered"] + m["dropped"] + m["in_flight"]


# ------------------------------------------------------------------ energy
def test_energy_is_compute_plus_transmit_plus_receive_plus_idle(tmp_path: Path) -> None:
    """Recomputed per device from the written topology and counters alone."""
    result = netsim.run(build("fedavg", rounds=3, failures=0.2, devices="mixed"))
    out = result.write(tmp_path / "run")
    g = nx.read_graphml(out / "topology.graphml", node_type=int)
    m = pd.read_parquet(out / "metrics.parquet")
    nodes = m[m.node >= 0].drop_duplicates(["node", "metric"], keep="last")
    nodes = nodes.pivot(index="node", columns="metric", values="value")
    assert (nodes["down_s"] > 0).any()  # churn: some idle time was spent down
    for k, row in nodes.iterrows():
        a = g.nodes[k]
        parts = {
            "energy_compute_J": a["energy_per_flop_J"] * row["flops"],
            "energy_tx_J": a["energy_tx_per_byte_J"] * row["bytes_sent"],
            "energy_rx_J": a["energy_rx_per_byte_J"] * row["bytes_received"],
            "energy_idle_J": a["idle_power_W"] * (row["idle_s"] - row["down_s"]),
        }
        for name, value in parts.items():
            assert row[name] == pytest.approx(value, rel=1e-9, abs=1e-15)
        assert row["energy_J"] == pytest.approx(sum(parts.values()), rel=1e-9)
    summary = result.summary
    assert summary["energy_J"] == pytest.approx(nodes["energy_J"].sum(), rel=1e-9)
    assert sum(summary["energy_by_cause_J"].values()) == pytest.approx(
        summary["energy_J"], rel=1e-9
    )


# ------------------------------------------------------------------ batteries
def battery_runs() -> list[tuple[str, nx.Graph, Offload, float]]:
    """(case, graph, algorithm, the exhaustion time computed by hand)."""
    # a client idling at 0.5 W with 2.5 J: empty at 5 s, less what its two
    # 8-byte messages cost (8e-7 J sent at t=0, 4e-7 J received at t=4)
    idle = star(2, battery_J=np.inf)
    idle.nodes[1]["battery_J"] = 2.5
    t_idle = (2.5 - 8e-7 - 4e-7) / 0.5
    # a server computing at 1 J/s (1e9 FLOP/s, 1e-9 J/FLOP) with no idle power
    # and 10 J: empty 10 s into its queue, in the middle of the third job, less
    # the five requests it received at t = 0 and the two replies it sent
    busy = star(5, idle_power_W=0.0)
    busy.nodes[0]["battery_J"] = 10.0
    t_busy = (10.0 - 5 * 8 * 5e-8 - 2 * 8 * 1e-7) / 1.0
    return [
        ("idle client", idle, Offload(job_flops=4e9, starts=(0.0, 10.0)), t_idle),
        ("busy server", busy, Offload(job_flops=4e9), t_busy),
    ]


@pytest.mark.parametrize(
    ("case", "graph", "algo", "expected"), battery_runs(), ids=[c[0] for c in battery_runs()]
)
def test_an_empty_battery_takes_the_device_down_and_replays(
    tmp_path: Path, case: str, graph: nx.Graph, algo: Offload, expected: float
) -> None:
    first = run(graph, algo)
    downs = [e for e in first.failures if e.event == "down"]
    assert len(downs) == 1 and first.summary["batteries_exhausted"] == 1
    node = downs[0].ids[0]
    assert downs[0].time == pytest.approx(expected, rel=1e-9)
    energy = per_node(first).loc[node, "energy_J"]
    assert energy == pytest.approx(graph.nodes[node]["battery_J"], rel=1e-9)
    out = first.write(tmp_path / "run")
    assert read_trace(out / "failures.csv")[0].time == downs[0].time  # written exactly
    again = netsim.run(netsim.Scenario("offload", graph, algo), trace=out / "failures.csv")
    assert again.metrics.equals(first.metrics)
    assert again.failures == first.failures
