"""Failures: churn statistics, scripted events, restart semantics, replay."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import netsim
from netsim.errors import InputError
from netsim.traces import FailureEvent
from tests.conftest import build


def downtime_fraction(result: netsim.Result) -> float:
    """Mean fraction of the run each node spent down, from the failures log."""
    n, end = result.summary["nodes"], result.summary["sim_time"]
    down_since: dict[str, float] = {}
    total = 0.0
    for e in result.failures_frame().itertuples():
        if e.event == "down":
            down_since[e.target] = e.time
        elif e.event == "up":
            total += e.time - down_since.pop(e.target)
    total += sum(end - t for t in down_since.values())
    return total / (n * end)


def test_churn_keeps_nodes_down_the_requested_fraction() -> None:
    r = netsim.run(build("consensus", nodes=60, iterations=400, failures=0.3, mttr_s=0.01))
    cycles = sum(e.event == "down" for e in r.failures)
    assert cycles > 2000  # enough cycles for a tight estimate
    assert downtime_fraction(r) == pytest.approx(0.3, abs=0.03)


def test_down_node_neither_computes_nor_sends() -> None:
    s = build("consensus", nodes=8, iterations=30)
    s = replace(s, failures=netsim.Failures(events=(FailureEvent(0.0, "node:3", "down"),)))
    r = netsim.run(s)
    per_node = r.metrics[r.metrics["node"] >= 0].pivot_table(
        index="node", columns="metric", values="value"
    )
    assert per_node.loc[3, "flops"] == 0 and per_node.loc[3, "bytes_sent"] == 0
    assert per_node.loc[3, "bytes_received"] == 0
    assert (per_node.drop(index=3)["flops"] > 0).all()
    m = r.summary["messages"]
    assert m["sent"] == m["delivered"] + m["dropped"] + m["in_flight"]
    assert m["dropped"] > 0  # neighbours kept sending to node 3


def test_compute_time_is_flops_over_budget() -> None:
    s = build("diffusion_lms", nodes=10, iterations=50, devices="mixed")
    s = replace(s, failures=netsim.Failures(events=(FailureEvent(0.0, "node:2", "compute", 1e6),)))
    r = netsim.run(s)
    per_node = r.metrics[r.metrics["node"] >= 0].pivot_table(
        index="node", columns="metric", values="value"
    )
    budgets = np.array([r.graph.nodes[k]["compute_flops"] for k in range(10)])
    budgets[2] = 1e6  # changed at t = 0 by the event
    np.testing.assert_allclose(
        per_node["busy_s"].to_numpy(), per_node["flops"].to_numpy() / budgets, rtol=1e-12
    )


def test_restart_resets_state_resume_keeps_it() -> None:
    base = build("consensus", nodes=10, iterations=40, topology="ring")
    events = (FailureEvent(0.05, "node:0", "down"), FailureEvent(0.1, "node:0", "up"))
    runs = {}
    for mode in ("resume", "restart"):
        s = replace(base, failures=netsim.Failures(events=events, on_recover=mode))
        runs[mode] = netsim.run(s).series("consensus_error")
    after = runs["resume"]["time"] > 0.1
    # right after recovery, the restarted node is back at its initial value: a larger error
    first = int(np.flatnonzero(after.to_numpy())[0])
    assert runs["restart"]["value"][first] > 1.5 * runs["resume"]["value"][first]
    before = ~after
    assert runs["restart"]["value"][before].equals(runs["resume"]["value"][before])


def test_replaying_failures_csv_reproduces_the_run_bit_for_bit(tmp_path) -> None:
    s = build("diffusion_lms", nodes=16, iterations=400, failures=0.2, mttr_s=0.05)
    original = netsim.run(s)
    assert len(original.failures) > 20
    original.write(tmp_path / "a")
    replay = netsim.run(s, trace=tmp_path / "a" / "failures.csv")
    assert replay.failures == original.failures
    assert replay.metrics.equals(original.metrics)
    assert replay.summary["messages"] == original.summary["messages"]


def test_two_algorithms_see_the_same_failures_from_one_trace(tmp_path) -> None:
    recorded = netsim.run(
        build("diffusion_lms", nodes=12, iterations=300, failures=0.2, mttr_s=0.05)
    )
    recorded.write(tmp_path / "rec")
    runs = [
        netsim.run(
            build("diffusion_lms", nodes=12, iterations=300, strategy=strategy),
            trace=tmp_path / "rec" / "failures.csv",
        )
        for strategy in ("atc", "cta")
    ]
    assert runs[0].failures == runs[1].failures == recorded.failures
    assert not runs[0].metrics.equals(runs[1].metrics)  # different algorithms, same failures


def test_trace_targets_are_checked_against_the_topology(tmp_path) -> None:
    s = build("consensus", nodes=5, iterations=5, topology="ring")
    bad_node = tmp_path / "n.csv"
    bad_node.write_text("time,target,event,value\n0.1,node:7,down,\n")
    with pytest.raises(
        InputError, match=r"n\.csv:2: target: node:7 does not exist \(the topology has nodes 0..4\)"
    ):
        netsim.run(s, trace=bad_node)
    bad_link = tmp_path / "l.csv"
    bad_link.write_text("time,target,event,value\n0.1,link:0-2,down,\n")
    with pytest.raises(
        InputError, match=r"l\.csv:2: target: link:0-2 is not a link of the topology"
    ):
        netsim.run(s, trace=bad_link)


def test_link_failure_and_latency_events() -> None:
    s = build("consensus", nodes=6, iterations=20, topology="ring")
    slow = replace(
        s, failures=netsim.Failures(events=(FailureEvent(0.0, "link:0-1", "latency", 10.0),))
    )
    r = netsim.run(slow)
    late = r.series("messages_late")
    assert (late["value"] == 2).all()  # 0->1 and 1->0 never make it within a round
    cut = replace(s, failures=netsim.Failures(events=(FailureEvent(0.0, "link:0-1", "down"),)))
    m = netsim.run(cut).summary["messages"]
    assert m["dropped"] == 2 * 20  # both directions, every round


def test_a_network_entirely_down_pauses_and_resumes() -> None:
    n = 6
    events = tuple(
        FailureEvent(t, f"node:{k}", e) for t, e in ((0.05, "down"), (0.1, "up")) for k in range(n)
    )
    s = replace(
        build("consensus", nodes=n, iterations=40, topology="ring"),
        failures=netsim.Failures(events=events),
    )
    r = netsim.run(s)
    e = r.series("consensus_error")
    during = e[(e["time"] > 0.05) & (e["time"] < 0.1)]["value"]
    assert len(during) > 3 and during.nunique() == 1  # nobody computes, nothing changes
    assert e["value"].iloc[-1] < during.iloc[0]  # and it resumes afterwards
    m = r.summary["messages"]
    assert m["sent"] == m["delivered"] + m["dropped"] + m["in_flight"]


def test_a_scenario_can_name_its_trace_in_python(tmp_path) -> None:
    recorded = netsim.run(build("consensus", nodes=10, iterations=60, failures=0.3, mttr_s=0.02))
    recorded.write(tmp_path / "rec")
    trace = tmp_path / "rec" / "failures.csv"
    s = build("consensus", nodes=10, iterations=60)
    named = netsim.run(replace(s, failures=netsim.Failures(trace=trace)))
    assert named.failures == recorded.failures
    assert named.metrics.equals(recorded.metrics)
    assert named.summary["trace"] == str(trace) and named.summary["trace_nodes"] == 10


def test_a_failure_free_run_replays_too(tmp_path) -> None:
    s = build("consensus", nodes=6, iterations=10)
    r = netsim.run(s)
    r.write(tmp_path / "a")
    assert r.failures == []
    assert netsim.run(s, trace=tmp_path / "a" / "failures.csv").metrics.equals(r.metrics)
