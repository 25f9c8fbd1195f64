"""The network model: timing of transfers, failure semantics, accounting."""

from __future__ import annotations

import math
from typing import NamedTuple

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.link_table import LinkTable
from netsim.network import CANCELLED, DROPPED, OK, Network
from tests.reference_network import RefNetwork

FATE = {OK: "delivered", DROPPED: "dropped", CANCELLED: "cancelled"}


def make_network(
    graph: nx.Graph,
    uplink: float | list[float] = 100.0,
    downlink: float | list[float] = 1000.0,
    latency: float = 0.5,
    bandwidth: float = math.inf,
    loss: float = 0.0,
    seed: int = 0,
) -> Network:
    links = LinkTable.from_graph(graph)
    n, e = links.n_nodes, len(links)
    return Network(
        links,
        latency_s=np.full(e, latency),
        bandwidth_Bps=np.full(e, bandwidth),
        loss=np.full(e, loss),
        uplink_Bps=np.broadcast_to(np.asarray(uplink, dtype=float), (n,)),
        downlink_Bps=np.broadcast_to(np.asarray(downlink, dtype=float), (n,)),
        rng=np.random.default_rng(seed),
    )


def test_unicast_time_is_serialization_plus_latency() -> None:
    net = make_network(nx.path_graph(2), uplink=[100.0, 50.0], downlink=[20.0, 1000.0])
    b = net.unicast(0.0, np.array([0, 1]), np.array([1, 0]), 0.0, 200.0)
    # 0 -> 1 at min(uplink 100, downlink 1000) = 100 B/s; 1 -> 0 at min(50, 20) = 20 B/s
    assert b.t_arrive.tolist() == [200 / 100 + 0.5, 200 / 20 + 0.5]


def test_busy_uplink_queues_fifo() -> None:
    net = make_network(nx.star_graph(3))  # hub 0, uplink 100 B/s
    b = net.unicast(0.0, np.zeros(3, int), np.array([1, 2, 3]), 0.0, 100.0)
    assert b.t_arrive.tolist() == [1.5, 2.5, 3.5]  # 1 s each, one after the other
    later = net.unicast(0.5, np.array([0]), np.array([1]), 0.5, 100.0)
    assert later.t_arrive.tolist() == [4.5]  # waits behind the three queued messages


def test_broadcast_is_one_transmission_at_the_slowest_receivers_rate() -> None:
    net = make_network(nx.star_graph(3), uplink=100.0, downlink=[1000, 1000, 25, 1000])
    b = net.broadcast(0.0, np.array([0]), np.array([0.0]), 100.0)
    assert sorted(b.dst.tolist()) == [1, 2, 3]
    assert set(b.t_arrive.tolist()) == {100 / 25 + 0.5}
    net.finish(10.0)
    assert net.node_bytes_sent[0] == 100.0  # one transmission
    assert net.link_bytes.sum() == 300.0  # heard on three links


def test_link_loss_rate_matches_probability() -> None:
    net = make_network(nx.star_graph(20), loss=0.3, seed=4)
    for t in range(50):
        net.broadcast(float(t), np.arange(21), np.full(21, float(t)), 1.0)
    counts = net.finish(1000.0)
    n = counts.sent
    # binomial: 4 standard deviations
    assert abs(counts.dropped - 0.3 * n) < 4 * math.sqrt(n * 0.3 * 0.7)
    assert counts.sent == counts.delivered + counts.dropped


def test_receiver_failing_in_flight_drops_the_message() -> None:
    net = make_network(nx.path_graph(2))
    b = net.unicast(0.0, np.array([0]), np.array([1]), 0.0, 100.0)  # arrives at 1.5
    net.node_down(1, 1.0)
    assert b.fate[0] == DROPPED and b.drop_time[0] == 1.0
    assert net.counts(2.0).as_dict() == {"sent": 1, "delivered": 0, "dropped": 1, "in_flight": 0}


def test_sender_failing_before_sending_cancels() -> None:
    net = make_network(nx.path_graph(2))
    b = net.broadcast(0.0, np.array([0]), np.array([2.0]), 100.0)  # computing until t = 2
    net.node_down(0, 1.0)
    assert b.fate[0] == CANCELLED
    assert net.counts(5.0).sent == 0


def test_message_to_a_down_node_is_dropped_at_send_time() -> None:
    net = make_network(nx.path_graph(2))
    net.node_down(1, 0.0)
    b = net.unicast(1.0, np.array([0]), np.array([1]), 1.0, 100.0)
    c = net.counts(1.2)
    assert b.fate[0] == DROPPED and b.drop_time[0] == 1.0
    assert c.dropped == 1 and c.in_flight == 0


def test_link_down_drops_what_crosses_it_only() -> None:
    net = make_network(nx.path_graph(3))
    b = net.broadcast(0.0, np.array([1]), np.array([0.0]), 100.0)  # to 0 and to 2
    link_1_to_2 = int(net.links.index(np.array([1]), np.array([2]))[0])
    net.link_down(link_1_to_2, 1.0)
    fates = dict(zip(b.dst.tolist(), b.fate.tolist(), strict=True))
    assert fates == {0: OK, 2: DROPPED}


def test_recovered_receiver_takes_later_messages() -> None:
    net = make_network(nx.path_graph(2))
    net.node_down(1, 0.0)
    net.node_up_at(1, 1.0)
    b = net.unicast(1.0, np.array([0]), np.array([1]), 1.0, 100.0)
    assert net.delivered(b, 3.0).tolist() == [0]


# ----------------------------------------------------------------------------
# Property: the vectorized network agrees with the naive per-message model.
# Times and sizes are binary fractions, so ties (a failure at exactly a send
# or an arrival) happen often.

_TIMES = st.integers(0, 12).map(lambda i: i / 4)


class Case(NamedTuple):
    graph: nx.Graph
    uplink: list[float]
    downlink: list[float]
    latency: list[float]  # per directed link
    ops: list[tuple]  # (time, order, kind, what, arg, size), failures first at ties
    checks: list[float]  # times at which to compare counters

    def network(self, loss: float = 0.0) -> Network:
        net = make_network(self.graph, uplink=self.uplink, downlink=self.downlink, loss=loss)
        net.latency_s[:] = self.latency
        return net


@st.composite
def network_case(draw: st.DrawFn) -> Case:
    n = draw(st.integers(2, 5))
    pairs = [(u, v) for u in range(n) for v in range(u + 1, n)]
    edges = draw(st.lists(st.sampled_from(pairs), min_size=1, unique=True))
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(edges)
    uplink = draw(st.lists(st.sampled_from([1.0, 2.0, 4.0]), min_size=n, max_size=n))
    downlink = draw(st.lists(st.sampled_from([2.0, 4.0, 8.0]), min_size=n, max_size=n))
    latency = draw(
        st.lists(
            st.sampled_from([0.0, 0.25, 0.5]), min_size=len(edges) * 2, max_size=len(edges) * 2
        )
    )
    ops = []
    for _ in range(draw(st.integers(1, 14))):
        t = draw(_TIMES)
        kind = draw(st.sampled_from(["broadcast", "unicast", "node", "link"]))
        if kind == "broadcast":
            senders = draw(st.lists(st.integers(0, n - 1), min_size=1, unique=True))
            delays = [draw(st.sampled_from([0.0, 0.25, 0.5])) for _ in senders]
            size = draw(st.sampled_from([0.5, 1.0, 2.0]))
            ops.append((t, 1, kind, senders, delays, size))
        elif kind == "unicast":
            arcs = [(u, v) for u, v in edges] + [(v, u) for u, v in edges]
            chosen = draw(st.lists(st.sampled_from(arcs), min_size=1, max_size=4, unique=True))
            delays = [draw(st.sampled_from([0.0, 0.25])) for _ in chosen]
            ops.append((t, 1, kind, chosen, delays, draw(st.sampled_from([0.5, 1.0]))))
        else:
            index = draw(st.integers(0, (n if kind == "node" else 2 * len(edges)) - 1))
            ops.append((t, 0, kind, index, draw(st.booleans()), None))  # failures first at ties
    checks = draw(st.lists(_TIMES, max_size=4))
    return Case(
        graph, uplink, downlink, latency, sorted(ops, key=lambda o: (o[0], o[1])), sorted(checks)
    )


@settings(max_examples=300, deadline=None)
@given(network_case())
def test_vectorized_network_matches_per_message_model(case: Case) -> None:
    uplink, downlink = case.uplink, case.downlink
    net = case.network()
    links = net.links
    arcs = list(zip(links.src.tolist(), links.dst.tolist(), strict=True))
    rate = [min(uplink[u], downlink[v]) for u, v in arcs]
    brate = [
        min([uplink[u]] + [rate[e] for e, (a, _) in enumerate(arcs) if a == u])
        for u in range(len(uplink))
    ]
    ref = RefNetwork(len(uplink), arcs, rate, brate, list(case.latency))
    batches = []
    pending_checks = list(case.checks)
    for t, _, kind, what, arg, size in case.ops:
        while pending_checks and pending_checks[0] < t:
            c = pending_checks.pop(0)
            assert net.counts(c).as_dict() == ref.counts(c)
        if kind == "node":
            (net.node_down if arg else net.node_up_at)(what, t)
            ref.event("node", what, t, arg)
        elif kind == "link":
            (net.link_down if arg else net.link_up_at)(what, t)
            ref.event("link", what, t, arg)
        elif kind == "broadcast":
            tq = [t + d for d in arg]
            b = net.broadcast(t, np.array(what), np.array(tq), size)
            ref.broadcast(t, what, tq, [size] * len(what))
            batches.append((t, b))
        else:
            tq = [t + d for d in arg]
            src = np.array([u for u, _ in what])
            dst = np.array([v for _, v in what])
            b = net.unicast(t, src, dst, np.array(tq), size)
            ref.unicast(t, what, tq, [size] * len(what))
            batches.append((t, b))
    end = 10.0
    assert net.counts(end).as_dict() == ref.counts(end)
    got = sorted(
        (
            t,
            int(b.link[i]),
            float(b.t_queue[i]),
            float(b.t_arrive[i]),
            FATE[int(b.fate[i])],
            float(b.drop_time[i]) if b.fate[i] == DROPPED else math.inf,
        )
        for t, b in batches
        for i in range(len(b))
    )
    want = sorted(
        (m.created, m.link, m.t_queue, m.t_arrive, m.fate, m.drop_time) for m in ref.messages
    )
    assert got == want


@settings(max_examples=100, deadline=None)
@given(network_case(), st.lists(_TIMES, min_size=1, max_size=6))
def test_conservation_at_any_time(case: Case, times: list[float]) -> None:
    """sent = delivered + dropped + in flight, each counted on its own, with loss."""
    net = case.network(loss=0.2)
    for t, _, kind, what, arg, size in case.ops:
        if kind == "node":
            (net.node_down if arg else net.node_up_at)(what, t)
        elif kind == "link":
            (net.link_down if arg else net.link_up_at)(what, t)
        elif kind == "broadcast":
            net.broadcast(t, np.array(what), np.array([t + d for d in arg]), size)
    last = max(o[0] for o in case.ops)
    for t in sorted(times):
        if t >= last:
            c = net.counts(t)
            assert c.sent == c.delivered + c.dropped + c.in_flight
            assert min(c.sent, c.delivered, c.dropped, c.in_flight) >= 0


def test_unknown_link_is_an_error() -> None:
    net = make_network(nx.path_graph(3))
    with pytest.raises(ValueError, match="no link 0->2"):
        net.unicast(0.0, np.array([0]), np.array([2]), 0.0, 1.0)
