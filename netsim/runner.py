"""``netsim.run``: play a scenario out on the virtual clock and return its result.

The runner validates the scenario (attributes, connectivity, trace targets)
before any host starts, builds the network and the hosts, runs the
algorithm's protocol on a fresh SimPy environment, and assembles the
:class:`~netsim.results.Result`. It never writes files (see
:meth:`Result.write`); the only wall-clock reading is the run's
``wall_time_s``.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import simpy

import topologies
from netsim import __version__, backends, provenance
from netsim import rng as rngs
from netsim.algorithm import Algorithm
from netsim.assignment import Placement, cross_fraction
from netsim.backends import PER_DEVICE, Hosts
from netsim.devices import Devices
from netsim.dispatch import Backend, Dispatcher
from netsim.energy import BatteryWatch, EnergyModel
from netsim.errors import InputError
from netsim.failures import FailureInjector
from netsim.graph_tables import LINK_KEYS, NODE_KEYS, run_tables
from netsim.kernel import RESET, HostSetup, Request
from netsim.link_table import LinkTable
from netsim.network import Network
from netsim.results import Result
from netsim.scenario import Scenario
from netsim.scenario_file import MODULE_PREFIX
from netsim.simulation import Simulation
from netsim.traces import FailureEvent, node

_POSITIVE = ("compute_flops", "uplink_Bps", "downlink_Bps")
_NON_NEGATIVE = (
    "energy_per_flop_J",
    "energy_tx_per_byte_J",
    "energy_rx_per_byte_J",
    "idle_power_W",
)


@dataclass(frozen=True)
class Prepared:
    """A validated scenario, ready to simulate."""

    graph: nx.Graph
    links: LinkTable
    edges: list[tuple[int, int]]
    edge_data: list[dict[str, Any]]  # attributes of each of ``edges``
    edge_of_link: np.ndarray  # index into ``edges`` of each directed link
    node_arrays: dict[str, np.ndarray]
    link_weight: np.ndarray | None
    self_weight: np.ndarray | None

    def link_array(self, name: str) -> np.ndarray:
        """Edge attribute ``name`` for every directed link."""
        per_edge = np.array([d[name] for d in self.edge_data], dtype=float)
        return per_edge[self.edge_of_link] if len(per_edge) else np.zeros(0)


BYTES_PER_ROW = 100  # a metric row held in Python lists, at least (measured about 120)


def check_size(algorithm: Any) -> None:
    """Refuse, with the estimate, a run whose metrics alone could not fit in
    this machine's memory: every iteration or round records at least one row."""
    for field_name in ("iterations", "rounds"):
        steps = getattr(algorithm, field_name, None)
        if not isinstance(steps, int):
            continue
        need = steps * BYTES_PER_ROW
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if need > memory:
            raise InputError(
                f"{field_name}={steps:,} would need at least {need / 1e9:,.0f} GB for the "
                f"metrics alone; this machine has {memory / 1e9:,.0f} GB"
            )


def prepare(scenario: Scenario) -> Prepared:
    """Validate ``scenario`` and derive the arrays the engine runs on."""
    graph = nx.Graph(scenario.graph)  # a copy; the user's graph is not touched
    n = graph.number_of_nodes()
    if n == 0:
        raise InputError(f"scenario {scenario.name!r}: the topology has no nodes")
    if sorted(graph.nodes) != list(range(n)):
        raise InputError(
            f"scenario {scenario.name!r}: topology nodes must be the integers 0..{n - 1} "
            "(topologies.load_graph renumbers file graphs)"
        )
    if nx.number_of_selfloops(graph):
        raise InputError(f"scenario {scenario.name!r}: the topology has self-loops")
    topologies.assign_devices(graph, "homogeneous")  # fills only what is missing
    topologies.assign_links(graph)
    _check_attributes(graph)
    algorithm = scenario.algorithm
    check_size(algorithm)
    if algorithm.needs_connected and n > 1 and not nx.is_connected(graph):
        parts = nx.number_connected_components(graph)
        raise InputError(
            f"the topology is disconnected ({parts} components); "
            f"{algorithm.name} needs a connected graph"
        )
    links = LinkTable.from_graph(graph)
    edges = [(int(u), int(v)) for u, v in graph.edges()]
    edge_key = np.array([min(u, v) * n + max(u, v) for u, v in edges], dtype=np.int64)
    order = np.argsort(edge_key)
    link_key = np.minimum(links.src, links.dst) * n + np.maximum(links.src, links.dst)
    edge_of_link = order[np.searchsorted(edge_key[order], link_key)] if len(edges) else links.src
    node_arrays = _node_arrays(graph, algorithm)
    link_weight = self_weight = None
    if algorithm.combination is not None:
        w = topologies.combination_weights(graph, algorithm.combination)
        link_weight = np.zeros(len(links))
        link_weight[links.index(w.src, w.dst)] = w.weight
        self_weight = w.self_weight
    edge_data = [graph.edges[e] for e in edges]
    return Prepared(
        graph, links, edges, edge_data, edge_of_link, node_arrays, link_weight, self_weight
    )


def _check_attributes(graph: nx.Graph) -> None:
    def bad(where: str, name: str, value: Any, expected: str) -> InputError:
        return InputError(f"topology {where}: {name}: expected {expected}, got {value!r}")

    def reserved(where: str, name: str, table: str) -> InputError:
        return InputError(f"topology {where}: attribute {name!r} is reserved (an id in {table})")

    for k, data in graph.nodes(data=True):
        for name in NODE_KEYS:
            if name in data:
                raise reserved(f"node {k}", name, "nodes.parquet")
        for name in _POSITIVE + _NON_NEGATIVE:
            value = data[name]
            ok = isinstance(value, int | float) and math.isfinite(value)
            if not ok or (value <= 0 if name in _POSITIVE else value < 0):
                expected = "a finite number > 0" if name in _POSITIVE else "a finite number >= 0"
                raise bad(f"node {k}", name, value, expected)
        battery = data.get("battery_J", math.inf)
        if not (isinstance(battery, int | float) and battery > 0):
            raise bad(f"node {k}", "battery_J", battery, "a number > 0 (inf: no battery)")
    for u, v, data in graph.edges(data=True):
        for name in LINK_KEYS:
            if name in data:
                raise reserved(f"link {u}-{v}", name, "links.parquet")
        latency, bandwidth, loss = data["latency_s"], data["bandwidth_Bps"], data["loss"]
        if not (isinstance(latency, int | float) and math.isfinite(latency) and latency >= 0):
            raise bad(f"link {u}-{v}", "latency_s", latency, "a finite number >= 0")
        if not (isinstance(bandwidth, int | float) and bandwidth > 0):
            raise bad(f"link {u}-{v}", "bandwidth_Bps", bandwidth, "a number > 0 (inf: no cap)")
        if not (isinstance(loss, int | float) and 0 <= loss < 1):
            raise bad(f"link {u}-{v}", "loss", loss, "a probability in [0, 1)")


def _node_arrays(graph: nx.Graph, algorithm: Algorithm) -> dict[str, np.ndarray]:
    """Node attributes as arrays by node id: numbers present on every node as
    floats; anything else (e.g. a model prototype's name) as objects, ``None``
    where a node lacks it."""
    n = graph.number_of_nodes()
    names: set[str] = set.intersection(*(set(d) for _, d in graph.nodes(data=True)))
    anywhere: set[str] = set.union(*(set(d) for _, d in graph.nodes(data=True)))
    for name in algorithm.node_attributes:
        if name not in names:
            missing = next(k for k, d in graph.nodes(data=True) if name not in d)
            raise InputError(
                f"topology node {missing}: attribute {name!r} missing "
                f"({algorithm.name} needs {', '.join(algorithm.node_attributes)} on every node)"
            )
    arrays = {}
    for name in sorted(names):
        values = [graph.nodes[k][name] for k in range(n)]
        if all(isinstance(x, int | float) and not isinstance(x, bool) for x in values):
            arrays[name] = np.array(values, dtype=float)
        else:
            arrays[name] = np.empty(n, dtype=object)
            arrays[name][:] = values
    for name in sorted(anywhere - names):
        arrays[name] = np.empty(n, dtype=object)
        arrays[name][:] = [graph.nodes[k].get(name) for k in range(n)]
    if "battery_J" not in arrays or arrays["battery_J"].dtype == object:
        arrays["battery_J"] = np.array(
            [float(graph.nodes[k].get("battery_J", math.inf)) for k in range(n)]
        )
    for name in algorithm.node_attributes:
        if (
            name not in arrays
            or arrays[name].dtype == object
            or not np.all(np.isfinite(arrays[name]))
        ):
            raise InputError(
                f"topology: node attribute {name!r} must be a finite number on every node"
            )
    return arrays


def run(
    scenario: Scenario,
    *,
    backend: str = "inline",
    hosts: Hosts = None,
    address: str | None = None,
    trace: str | Path | None = None,
    progress: Callable[[float], None] | None = None,
    placement: Placement = "graph",
) -> Result:
    """Run ``scenario`` and return its :class:`Result`.

    ``backend``: ``inline`` (in this process) or ``ray`` (or any registered
    in :mod:`netsim.backends`); ``hosts``: how many hosts hold the devices, or
    ``"per-device"`` for one each (default: the backend's choice; inline:
    one; Ray: one per CPU of the cluster); ``address``: a Ray cluster to join
    (default: ``RAY_ADDRESS`` or a new local instance); ``trace``: a failure
    trace that replaces the scenario's own failures; ``placement``: how
    devices are spread over hosts (``"graph"``: blocks of a bandwidth-reducing
    order, so few messages cross hosts; ``"blocks"``: blocks of ids).
    """
    wall_start = time.perf_counter()
    factory = backends.get(backend)
    check_hosts(hosts)
    prepared = prepare(scenario)
    algorithm = scenario.algorithm
    failures = scenario.failures.replayed_from(trace) if trace is not None else scenario.failures
    n, attrs = prepared.graph.number_of_nodes(), prepared.node_arrays
    env = simpy.Environment()
    network = _network(prepared, scenario.seed)
    devices = Devices(env, network, attrs["compute_flops"])
    energy = EnergyModel.from_nodes(attrs)
    dispatcher: Dispatcher | None = None
    program = algorithm.program

    def on_node_change(node_id: int, up: bool) -> None:
        if up and failures.on_recover == "restart" and dispatcher is not None:
            dispatcher.call([Request(RESET, np.array([node_id]))])  # costs no time

    injector = FailureInjector(
        env,
        devices,
        prepared.edges,
        seed=scenario.seed,
        failures=failures,
        on_node_change=on_node_change,
    )
    scripted = injector.scripted_events()  # validate the trace before any host starts
    algorithm.check(prepared.graph, scenario.seed)  # data shapes, server id, ...
    setup = HostSetup(
        seed=scenario.seed,
        devices=np.arange(n),
        n_nodes=n,
        nodes=attrs,
        link_src=prepared.links.src,
        link_dst=prepared.links.dst,
        link_weight=prepared.link_weight,
        self_weight=prepared.self_weight,
    )
    modules = [m for name, m in sys.modules.items() if name.startswith(MODULE_PREFIX)]
    hosts_backend: Backend = factory(
        program, setup, hosts=hosts, address=address, modules=modules, placement=placement
    )
    try:
        dispatcher = Dispatcher(hosts_backend)
        sim = Simulation(
            env,
            network,
            devices,
            dispatcher,
            program,
            seed=scenario.seed,
            nodes=attrs,
            progress=progress,
        )
        injector.start(scripted)
        if np.isfinite(energy.battery_J).any():

            def battery_empty(k: int) -> None:
                injector.apply(FailureEvent(env.now, node(k), "down"))

            BatteryWatch(env, devices, network, energy, battery_empty).start()
        env.run(until=env.process(algorithm.protocol(sim)))
        counts = network.finish(env.now)
    finally:
        hosts_backend.close()
    per_device = _device_totals(sim, network, energy)
    metrics = _metrics_frame(sim, per_device)
    final = algorithm.final(metrics)
    summary = {
        "netsim_version": __version__,
        "scenario": scenario.name,
        "algorithm": algorithm.name,
        "params": dict(scenario.params),
        "seed": scenario.seed,
        "backend": hosts_backend.name,
        "hosts": hosts_backend.n_hosts,
        **hosts_backend.describe(),
        "nodes": n,
        "links": len(prepared.links),
        "trace": None if failures.trace is None else str(failures.trace),
        "trace_nodes": injector.trace_nodes if failures.trace is not None else None,
        "sim_time": float(env.now),
        "wall_time_s": time.perf_counter() - wall_start,
        "events": int(devices.jobs + counts.sent + len(injector.log.events)),
        "host_calls": dispatcher.calls,
        "placement": placement,
        "links_cross_hosts": cross_fraction(
            hosts_backend.assignment, prepared.links.src, prepared.links.dst
        ),
        "messages_cross_hosts": sim.messages_crossing / max(sim.messages_counted, 1),
        "messages": counts.as_dict(),
        "bytes_sent": float(network.node_bytes_sent.sum()),
        "energy_J": float(per_device["energy_J"].sum()),
        "energy_by_cause_J": {
            cause: float(per_device[f"energy_{cause}_J"].sum())
            for cause in ("compute", "tx", "rx", "idle")
        },
        "batteries_exhausted": int(devices.exhausted.sum()),
        "failures": len(injector.log.events),
        "final": final.values,
        "final_notes": final.notes,
        "provenance": provenance.record(dict(scenario.origin)),
    }
    nodes, links = run_tables(prepared, network.link_bytes)
    return Result(summary, metrics, list(injector.log.events), nodes, links, dict(sim.tables))


def check_hosts(hosts: object) -> None:
    if hosts is None or hosts == PER_DEVICE:
        return
    if not isinstance(hosts, int) or isinstance(hosts, bool) or hosts < 1:
        raise InputError(f"--hosts: expected an integer >= 1 or {PER_DEVICE!r}, got {hosts!r}")


def _network(prepared: Prepared, seed: int) -> Network:
    attrs = prepared.node_arrays
    return Network(
        prepared.links,
        latency_s=prepared.link_array("latency_s"),
        bandwidth_Bps=prepared.link_array("bandwidth_Bps"),
        loss=prepared.link_array("loss"),
        uplink_Bps=attrs["uplink_Bps"],
        downlink_Bps=attrs["downlink_Bps"],
        rng=rngs.generator(seed, "network"),
    )


def _device_totals(sim: Simulation, network: Network, energy: EnergyModel) -> dict[str, np.ndarray]:
    """Per-device totals at the end of the run."""
    t, devices = sim.now, sim.devices
    busy, down = devices.busy_by(t), devices.down_by(t)
    totals = {
        "flops": devices.flops_by(t),
        "busy_s": busy,
        "idle_s": t - busy,
        "down_s": down,
        "bytes_sent": network.node_bytes_sent,
        "bytes_received": network.node_bytes_received,
    }
    idle_up = np.clip(t - busy - down, 0.0, None)
    totals |= energy.breakdown(
        totals["flops"], network.node_bytes_sent, network.node_bytes_received, idle_up
    )
    return totals


def _metrics_frame(sim: Simulation, per_device: dict[str, np.ndarray]) -> pd.DataFrame:
    """The metric log plus per-node end-of-run totals (at the final time and step)."""
    log = sim.metrics
    last_step = max(log.step, default=0)
    nodes = np.arange(sim.n_nodes)
    for name, values in per_device.items():
        log.extend(sim.now, last_step, nodes, name, values)
    return pd.DataFrame(
        {
            "time": np.array(log.time, dtype=np.float64),
            "step": np.array(log.step, dtype=np.int64),
            "node": np.array(log.node, dtype=np.int64),
            "metric": pd.array(log.metric, dtype=object),
            "value": np.array(log.value, dtype=np.float64),
        }
    )
