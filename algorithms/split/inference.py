"""Multi-task inference on devices, at an edge server, or split between them
(Matsubara, Mendula, Levorato, "Ladon", WACV 2025; papers.md section 6).

Every device issues requests (:mod:`algorithms.split.workload`); each
request is one image of the procedural shapes set and asks for all three
tasks: the shape's class, its box and its mask. Where the work runs is the
``mode``:

- ``local``: the three lightweight on-device models run on the device; no
  message is sent; ``local_teacher``: the teacher runs on the device (the
  server's accuracy, at the device's speed);
- ``png`` / ``jpeg``: the device encodes the image (lossless PNG, or JPEG at
  ``jpeg_quality``) and sends it; the server decodes it and runs the
  multi-head teacher;
- ``split``: the device runs the split model's encoder, quantizes its
  bottleneck and entropy-codes it (one bitstream for all tasks); the server
  decodes it and runs the task heads;
- ``split_per_task``: one bottleneck per task, each its own message.

The server answers with the results (class, box, bit-packed mask). Every
duration comes from a model: the device and server compute queues run the
FLOPs counted on the models (and the codecs' declared costs) at their
budgets; messages are the real encoded bytes on FIFO links. Per request the
run records its timeline, latency parts, bytes, device energy and task
scores in ``requests.parquet``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import networkx as nx
import numpy as np
import pandas as pd

from algorithms.base import Final, stateless_reset
from algorithms.split import modes, workload
from algorithms.split.modes import ModeCosts, mode_costs
from algorithms.split.task_metrics import score
from algorithms.split.training import Pipelines, SplitTraining, TrainedModels, trained
from netsim import checks
from netsim.dispatch import stack_sources
from netsim.errors import InputError
from netsim.kernel import HostSetup, Kernel, KernelCall, Outputs, Payloads, Request

if TYPE_CHECKING:
    from netsim.simulation import Simulation

MODES = modes.MODES
TASK_SCORES = ("correct", "box_iou", "mask_iou")


@dataclass(frozen=True)
class SplitInference:
    """Inference requests served in ``mode`` by the devices and the server ``server``.

    ``requests`` per device arrive as a Poisson process of ``rate`` per
    second, or at the times of ``arrivals`` (a CSV file ``device,time``).
    ``beta`` picks the trained split model (one of ``training.betas``).
    """

    mode: str = "split"
    beta: float = 0.1
    jpeg_quality: int = 50
    rate: float = 1.0
    requests: int = 100
    arrivals: str | None = None
    server: int = 0
    images: int = 1000  # the inference set requests draw from (never seen in training)
    training: SplitTraining = field(default_factory=SplitTraining)

    name: ClassVar[str] = "split_inference"
    needs_connected: ClassVar[bool] = True
    node_attributes: ClassVar[tuple[str, ...]] = ()
    combination: ClassVar[None] = None

    def __post_init__(self) -> None:
        checks.choice("mode", self.mode, MODES)
        checks.positive_int("jpeg_quality", self.jpeg_quality)
        if self.jpeg_quality > 95:
            raise InputError(f"jpeg_quality: expected 1..95, got {self.jpeg_quality}")
        checks.number("rate", self.rate, low=0, low_open=True)
        checks.positive_int("requests", self.requests)
        checks.positive_int("images", self.images)
        checks.positive_int("server", self.server, minimum=0)
        trained_betas = (
            self.training.per_task_betas if self.mode == "split_per_task" else self.training.betas
        )
        if self.mode.startswith("split") and self.beta not in trained_betas:
            betas = ", ".join(f"{b:g}" for b in trained_betas)
            raise InputError(
                f"beta: expected one of the trained values {betas} for mode {self.mode}, "
                f"got {self.beta:g}"
            )

    # ------------------------------------------------------------ checks
    def check(self, graph: nx.Graph, seed: int) -> None:
        if self.server not in graph:
            raise InputError(f"server: node {self.server} is not in the topology")
        for d in self.clients(graph.number_of_nodes()):
            if not graph.has_edge(int(d), self.server):
                raise InputError(
                    f"topology: device {int(d)} has no link to the server (node {self.server})"
                )
        if self.arrivals is not None:
            workload.read_arrivals(self.arrivals, self.clients(graph.number_of_nodes()))
        self.program  # noqa: B018  (trains the models, or loads them, before any host starts)

    def clients(self, n: int) -> np.ndarray:
        return np.array([k for k in range(n) if k != self.server], dtype=np.int64)

    # ------------------------------------------------------------ host side
    @property
    def program(self) -> SplitProgram:
        return _program(self.mode, self.beta, self.jpeg_quality, self.images, self.training)

    # ------------------------------------------------------------ driver side
    def protocol(self, sim: Simulation) -> Generator[Any, Any, None]:
        program = self.program
        clients = self.clients(sim.n_nodes)
        if self.arrivals is not None:
            times = workload.read_arrivals(self.arrivals, clients)
        else:
            times = {
                int(d): workload.poisson_arrivals(
                    self.rate, self.requests, sim.rng("arrivals", int(d))
                )
                for d in clients
            }
        total = sum(len(t) for t in times.values())
        log = workload.RequestLog()
        done: list[Any] = []  # the requests' SimPy processes

        def source(d: int) -> Generator[Any, Any, None]:
            pick = sim.rng("images", d)
            for k, t in enumerate(times[d]):
                image = int(pick.integers(self.images))
                yield sim.timeout_until(float(t))
                done.append(
                    sim.env.process(self._request(sim, program.costs, d, k, image, log, total))
                )

        sources = [sim.env.process(source(int(d))) for d in clients]
        yield sim.env.all_of(sources)
        yield sim.env.all_of(done)
        requests = log.frame()
        sim.add_table("requests", requests)
        _record_summary(sim, requests, clients)

    def _request(
        self,
        sim: Simulation,
        costs: ModeCosts,
        d: int,
        k: int,
        image: int,
        log: workload.RequestLog,
        total: int,
    ) -> Generator[Any, Any, None]:
        """One request's life: device work, uplink, server work, reply."""
        stages = {"arrival": sim.now}

        def finish(status: str, **values: float) -> None:
            log.add(device=d, request=k, image=image, stages=stages, status=status, **values)
            sim.progress(len(log.rows) / total)

        if not sim.is_up(d):
            return finish(workload.DEVICE_DOWN)
        device = np.array([d])
        stages["device_start"] = max(sim.now, float(sim.devices.free_at[d]))
        work = sim.compute([Request("device", device, {"image": np.array([image])})])
        stages["device_finish"] = t = float(work.finish[0][0])
        yield sim.timeout_until(t)
        if bool(sim.devices.failed_since(d, stages["arrival"])):
            return finish(workload.DEVICE_DOWN)
        nodes = sim.nodes  # device attributes: the energy coefficients
        compute_J = costs.device_flops * float(nodes["energy_per_flop_J"][d])
        if self.mode in modes.ON_DEVICE:
            stages["done"] = t
            out = work.outputs(0)
            scores = {s: float(out[s][0]) for s in TASK_SCORES}
            sim.record("latency_s", t - stages["arrival"], step=k, node=d)
            return finish(
                workload.OK, bytes_up=0.0, bytes_down=0.0, energy_compute_J=compute_J,
                energy_tx_J=0.0, energy_rx_J=0.0, energy_J=compute_J, **scores,
            )  # fmt: skip
        keys = costs.message_keys
        sizes = np.array([work.nbytes(0, key)[0] for key in keys], dtype=float)
        contents = stack_sources([(work.payload(0, key), 0) for key in keys])
        server = np.full(len(keys), self.server)
        up = sim.unicast(np.full(len(keys), d), server, t, sizes, contents)
        stages["uplink_start"] = float(up.tx_start.min())
        stages["uplink_end"] = float(up.tx_end.max())
        stages["server_arrival"] = t = float(up.t_arrive.max())
        yield sim.timeout_until(t)
        bytes_up = float(sizes.sum())
        tx_J = bytes_up * float(nodes["energy_tx_per_byte_J"][d])
        spent = {"bytes_up": bytes_up, "energy_compute_J": compute_J, "energy_tx_J": tx_J}
        if len(sim.delivered(up)) < len(keys):
            return finish(workload.DROPPED, **spent)
        if not sim.is_up(self.server):
            return finish(workload.SERVER_DOWN, **spent)
        stages["server_start"] = max(sim.now, float(sim.devices.free_at[self.server]))
        inbox = sim.inbox(up, np.array([self.server]))
        serve = sim.compute(
            [Request("serve", np.array([self.server]), {"image": np.array([image])}, inbox=inbox)]
        )
        stages["server_finish"] = t = float(serve.finish[0][0])
        yield sim.timeout_until(t)
        if bool(sim.devices.failed_since(self.server, stages["server_arrival"])):
            return finish(workload.SERVER_DOWN, **spent)
        out = serve.outputs(0)
        reply_size = serve.nbytes(0, "reply")
        reply = sim.unicast(
            np.array([self.server]), device, t, reply_size.astype(float), serve.payload(0, "reply")
        )
        stages["done"] = t = float(reply.t_arrive[0])
        yield sim.timeout_until(t)
        if len(sim.delivered(reply)) < 1:
            return finish(workload.DROPPED, **spent)
        bytes_down = float(reply_size[0])
        rx_J = bytes_down * float(nodes["energy_rx_per_byte_J"][d])
        sim.record("latency_s", t - stages["arrival"], step=k, node=d)
        finish(
            workload.OK,
            **spent,
            bytes_down=bytes_down,
            energy_rx_J=rx_J,
            energy_J=compute_J + tx_J + rx_J,
            **{s: float(out[s][0]) for s in TASK_SCORES},
        )

    def final(self, metrics: pd.DataFrame) -> Final:
        rows = metrics[(metrics["node"] == -1) & metrics["metric"].isin(SUMMARY_METRICS)]
        values = {str(m): float(v) for m, v in zip(rows["metric"], rows["value"], strict=True)}
        notes = {
            "latency_mean_s": "mean end-to-end latency (arrival to reply) of completed requests",
            "latency_p95_s": "95th percentile of the same (p50, p99 likewise)",
            "throughput_rps": "completed requests / (last completion - first arrival)",
            "accuracy": "share of completed requests whose class was right",
            "box_iou": "mean IoU of the predicted and true boxes",
            "mask_iou": "mean IoU of the predicted and true masks",
            "bytes_per_request": "mean bytes the device sent per completed request",
            "device_energy_per_request_J": (
                "mean device energy per completed request: compute + transmit + receive "
                "(idle power is in the per-device totals)"
            ),
        }
        return Final(values, {k: v for k, v in notes.items() if k in values})


SUMMARY_METRICS = (
    "requests",
    "completed",
    "latency_mean_s",
    "latency_p50_s",
    "latency_p95_s",
    "latency_p99_s",
    "throughput_rps",
    "accuracy",
    "box_iou",
    "mask_iou",
    "bytes_per_request",
    "device_energy_per_request_J",
)


def _record_summary(sim: Simulation, requests: pd.DataFrame, clients: np.ndarray) -> None:
    """Network-wide summary rows, and per device its latency percentiles and
    throughput."""
    ok = requests[requests["status"] == workload.OK] if len(requests) else requests
    step = int(requests["request"].max()) if len(requests) else 0
    latency = ok["latency_s"].to_numpy() if len(ok) else np.zeros(0)
    pct = workload.latency_percentiles(latency)
    summary = {
        "requests": float(len(requests)),
        "completed": float(len(ok)),
        "latency_mean_s": float(latency.mean()) if len(latency) else math.nan,
        "latency_p50_s": pct["p50_s"],
        "latency_p95_s": pct["p95_s"],
        "latency_p99_s": pct["p99_s"],
        "throughput_rps": workload.throughput(requests) if len(requests) else 0.0,
    }
    if len(ok):
        summary |= {
            "accuracy": float(ok["correct"].mean()),
            "box_iou": float(ok["box_iou"].mean()),
            "mask_iou": float(ok["mask_iou"].mean()),
            "bytes_per_request": float(ok["bytes_up"].mean()),
            "device_energy_per_request_J": float(ok["energy_J"].mean()),
        }
    for metric, value in summary.items():
        sim.record(metric, value, step=step)
    for d in clients:
        mine = ok[ok["device"] == d]["latency_s"].to_numpy() if len(ok) else np.zeros(0)
        for name, value in workload.latency_percentiles(mine).items():
            sim.record(f"latency_{name}", value, step=step, node=int(d))
        asked = requests[requests["device"] == d] if len(requests) else requests
        rps = workload.throughput(asked) if len(asked) else 0.0
        sim.record("throughput_rps", rps, step=step, node=int(d))


# ---------------------------------------------------------------- host program
@dataclass(frozen=True)
class SplitProgram:
    """The host side: the trained models travel with it (pickled to every host)."""

    mode: str
    beta: float
    jpeg_quality: int
    images: int
    models: TrainedModels
    costs: ModeCosts

    def init_state(self, setup: HostSetup, rngs: list[np.random.Generator]) -> SplitState:
        pipelines = Pipelines(self.models)
        return SplitState(pipelines, modes.inference_set(self.models.config, self.images))

    def kernel(self, name: str) -> Kernel:
        kernels: dict[str, Kernel] = {"device": self._device, "serve": self._serve}
        return kernels[name]

    def reset(self, state: Any, call: KernelCall) -> tuple[Any, Outputs]:
        return stateless_reset(state, call)

    def cost(self, request: Request) -> np.ndarray:
        per_device = {
            "device": self.costs.device_flops,
            "serve": self.costs.server_flops,
        }.get(request.kernel, 0.0)
        return np.full(len(request.devices), per_device)

    def _device(self, state: SplitState, call: KernelCall) -> tuple[SplitState, Outputs]:
        images = call.inputs["image"]
        pixels = state.data.images[images]
        pipes = state.pipelines
        if self.mode in modes.ON_DEVICE:
            model = pipes.local if self.mode == "local" else pipes.teacher
            return state, _scores(score(model(pixels), state.data, images))
        messages = modes.device_messages(pipes, self.mode, pixels, self.beta, self.jpeg_quality)
        return state, {
            key: Payloads.objects(rows, [len(b) for b in rows])
            for key, rows in zip(self.costs.message_keys, messages, strict=True)
        }

    def _serve(self, state: SplitState, call: KernelCall) -> tuple[SplitState, Outputs]:
        assert call.inbox is not None
        images = call.inputs["image"]
        received = [list(call.inbox.messages(i)) for i in range(len(images))]
        pred = modes.server_predictions(state.pipelines, self.mode, received, self.beta)
        replies = modes.pack_results(pred)
        return state, {
            **_scores(score(pred, state.data, images)),
            "reply": Payloads.objects(replies, [len(b) for b in replies]),
        }


@dataclass
class SplitState:
    pipelines: Pipelines
    data: Any  # the inference ShapeSet


def _scores(scores: dict[str, np.ndarray]) -> Outputs:
    return {s: np.asarray(scores[s], dtype=float) for s in TASK_SCORES}


@functools.cache
def _program(
    mode: str, beta: float, jpeg_quality: int, images: int, training: SplitTraining
) -> SplitProgram:
    models = trained(training)
    costs = mode_costs(Pipelines(models), mode, beta, jpeg_quality)
    return SplitProgram(mode, beta, jpeg_quality, images, models, costs)
