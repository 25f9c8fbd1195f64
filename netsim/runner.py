"""``netsim.run``: play a scenario out on the virtual clock and return its result.

The runner validates the scenario (attributes, connectivity, trace targets)
before any host starts, builds the network and the hosts, runs the
algorithm's protocol on a fresh SimPy environment, and assembles the
:class:`~netsim.results.Result`. It never writes files (see
:meth:`Result.write`); the only wall-clock reading is the run's
``wall_time_s``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import simpy

from netsim import __version__, backends, provenance
from netsim import rng as rngs
from netsim.assignment import Placement, cross_fraction
from netsim.backends import PER_DEVICE, Hosts
from netsim.devices import Devices
from netsim.dispatch import Backend, Dispatcher
from netsim.energy import BatteryWatch, EnergyModel
from netsim.errors import InputError
from netsim.failures import FailureInjector
from netsim.graph_tables import run_tables
from netsim.kernel import RESET, HostSetup, Request
from netsim.network import Network
from netsim.prepare import Prepared, prepare
from netsim.results import Result
from netsim.scenario import Scenario
from netsim.scenario_file import MODULE_PREFIX
from netsim.simulation import Simulation
from netsim.traces import FailureEvent, node


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
    nodes = np.arange(sim.n_nodes)
    last_step = log.last_step
    for name, values in per_device.items():
        log.extend(sim.now, last_step, nodes, name, values)
    return log.frame()
