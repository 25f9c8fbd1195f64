"""Multi-task split computing for inference (Matsubara et al., "Ladon", WACV
2025; papers.md section 6) against on-device and full-offload inference, on
the same requests, devices and network; only ``mode`` changes.

    netsim run scenarios/split_inference.py --out runs/split
    netsim run scenarios/split_inference.py --set mode=local --out runs/local
    netsim sweep scenarios/split_inference.py \\
        --grid mode=local,png,jpeg,split uplink_Bps=1e3,1e4,1e5,1e6,1e7

``devices`` devices of one class (``device``: ``phone`` or ``iot``, from the
``mixed`` profile) on a star around one edge server (node 0) with
``server_flops`` FLOP/s. Each device's uplink carries ``uplink_Bps`` bytes/s
and its downlink ``downlink_Bps``; every link has ``latency_s`` of
propagation. Each device issues ``requests`` requests, a Poisson process of
``rate`` per second (or the times in ``arrivals``, a CSV file
``device,time``); each asks for the class, box and mask of one image of the
procedural shapes set.

Modes: ``local`` (lightweight models on the device), ``local_teacher`` (the
server's teacher run on the device: its accuracy at the device's speed),
``png`` / ``jpeg`` (send the image; the server runs the teacher), ``split``
(the device's encoder and entropy-coded bottleneck, one stream for all tasks;
``beta`` picks the rate), ``split_per_task`` (one stream per task). ``models``:
``default`` (32x32 images, trained once and cached, about two minutes the
first time) or ``tiny`` (for quick checks). ``failures`` is the fraction of
time each node (server included) is down, in outages of ``mttr_s`` on
average; a request whose device, message or server is lost is recorded with
its status (``device_down``, ``dropped``, ``server_down``).
"""

from typing import Literal

import netsim
import topologies
from algorithms.split import PRESETS, SplitInference
from netsim import checks
from topologies.attributes import PROFILES


def scenario(
    mode: Literal["local", "local_teacher", "png", "jpeg", "split", "split_per_task"] = "split",
    beta: float = 0.1,
    jpeg_quality: int = 50,
    devices: int = 4,
    device: Literal["phone", "iot"] = "phone",
    rate: float = 2.0,
    requests: int = 50,
    arrivals: str | None = None,
    uplink_Bps: float = 1.25e5,
    downlink_Bps: float = 1.25e6,
    latency_s: float = 0.01,
    server_flops: float = 1e11,
    models: Literal["default", "tiny"] = "default",
    failures: float = 0.0,
    mttr_s: float = 5.0,
    seed: int = 0,
) -> netsim.Scenario:
    checks.positive_int("devices", devices)
    checks.number("uplink_Bps", uplink_Bps, low=0, low_open=True)
    checks.number("downlink_Bps", downlink_Bps, low=0, low_open=True)
    checks.number("server_flops", server_flops, low=0, low_open=True)
    checks.number("latency_s", latency_s, low=0)
    cls = next(c for c in PROFILES["mixed"] if c.name == device)
    edge = topologies.attributes.TIER_CLASSES["edge"]
    graph = topologies.build("star", devices + 1)
    graph.nodes[0].update(
        tier="edge",
        device_class="edge",
        compute_flops=server_flops,
        uplink_Bps=edge.uplink_Bps,
        downlink_Bps=edge.downlink_Bps,
    )
    for k in range(1, devices + 1):
        graph.nodes[k].update(
            device_class=cls.name,
            compute_flops=cls.compute_flops,
            uplink_Bps=uplink_Bps,
            downlink_Bps=downlink_Bps,
            energy_per_flop_J=cls.energy_per_flop_J,
            energy_tx_per_byte_J=cls.energy_tx_per_byte_J,
            energy_rx_per_byte_J=cls.energy_rx_per_byte_J,
            idle_power_W=cls.idle_power_W,
        )
    topologies.assign_devices(graph, "mixed", seed=seed)
    topologies.assign_links(graph, latency_s=latency_s, seed=seed)
    algorithm = SplitInference(
        mode=mode,
        beta=beta,
        jpeg_quality=jpeg_quality,
        rate=rate,
        requests=requests,
        arrivals=arrivals,
        training=PRESETS[models],
    )
    churn = netsim.Churn.from_downtime(failures, mttr_s, nodes=tuple(range(devices + 1)))
    return netsim.Scenario(
        name="split_inference",
        graph=graph,
        algorithm=algorithm,
        seed=seed,
        failures=netsim.Failures(churn=churn),
    )
