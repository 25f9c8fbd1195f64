"""Split-computing inference as a workload: every request's timeline and
latency parts, recomputed from the models' FLOPs, the bytes and the links;
device energy from the counters; the server queue against M/D/1 theory;
inline against Ray; replayed arrivals; bad input."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

import netsim
from algorithms.split import modes, workload
from algorithms.split.modes import reply_nbytes
from algorithms.split.task_metrics import score
from algorithms.split.training import Pipelines, trained
from netsim.errors import InputError
from tests.conftest import SCENARIOS, build
from tests.test_cli import run_cli

TINY = {"models": "tiny", "beta": 1.0, "devices": 3, "requests": 12, "rate": 5.0}
MODES = ("local", "local_teacher", "png", "jpeg", "split", "split_per_task")


@cache
def run(mode: str, **params: object) -> tuple[netsim.Scenario, netsim.Result]:
    scenario = build("split_inference", **{**TINY, "mode": mode, **params})
    return scenario, netsim.run(scenario)


@pytest.mark.parametrize("mode", MODES)
def test_latency_parts_add_up_to_the_end_to_end_latency(mode: str) -> None:
    _, result = run(mode)
    requests = result.tables["requests"]
    assert len(requests) == TINY["devices"] * TINY["requests"]
    assert (requests["status"] == workload.OK).all()
    parts = requests[list(workload.PARTS)].to_numpy()
    assert (parts >= 0).all()
    total = parts.sum(axis=1)
    latency = requests["done"] - requests["arrival"]
    np.testing.assert_allclose(total, latency, rtol=0, atol=1e-12)
    np.testing.assert_allclose(requests["latency_s"], latency, rtol=0, atol=0)
    if mode in ("local", "local_teacher"):
        assert (parts[:, 2:] == 0).all()  # nothing sent
    else:
        assert (requests["transfer_s"] > 0).all() and (requests["server_compute_s"] > 0).all()


@pytest.mark.parametrize("mode", ["jpeg", "split", "split_per_task"])
def test_each_part_is_what_the_models_and_links_say(mode: str) -> None:
    scenario, result = run(mode)
    requests = result.tables["requests"]
    graph = scenario.graph
    program = scenario.algorithm.program
    device, server = graph.nodes[1], graph.nodes[0]
    mine = requests[requests["device"] == 1]
    np.testing.assert_allclose(
        mine["device_compute_s"], program.costs.device_flops / device["compute_flops"], atol=1e-12
    )
    np.testing.assert_allclose(
        requests["server_compute_s"],
        program.costs.server_flops / server["compute_flops"],
        atol=1e-12,
    )
    rate = min(device["uplink_Bps"], server["downlink_Bps"])
    np.testing.assert_allclose(mine["transfer_s"], mine["bytes_up"] / rate, atol=1e-12)
    latency = graph.edges[0, 1]["latency_s"]
    np.testing.assert_allclose(requests["propagation_s"], latency, atol=1e-12)
    # the reply: the bit-packed results over the server's uplink and the device's downlink
    assert (requests["bytes_down"] == reply_nbytes(scenario.algorithm.training.image_size)).all()
    down = min(server["uplink_Bps"], device["downlink_Bps"])
    assert (requests["reply_s"] >= latency + requests["bytes_down"] / down - 1e-12).all()
    # one stream per task: three messages, sent back to back
    sent = result.summary["messages"]["sent"]
    per_request = 3 if mode == "split_per_task" else 1
    assert sent == len(requests) * (per_request + 1)


def test_device_energy_is_compute_transmit_receive_and_idle_from_the_counters() -> None:
    scenario, result = run("split")
    requests = result.tables["requests"]
    devices = netsim.device_table(result)
    for d in range(1, TINY["devices"] + 1):
        node = scenario.graph.nodes[d]
        mine = requests[requests["device"] == d]
        row = devices.loc[d]
        assert row["flops"] == pytest.approx(
            len(mine) * scenario.algorithm.program.costs.device_flops
        )
        assert row["bytes_sent"] == mine["bytes_up"].sum()
        assert row["bytes_received"] == mine["bytes_down"].sum()
        assert row["energy_compute_J"] == pytest.approx(mine["energy_compute_J"].sum(), rel=1e-9)
        assert row["energy_tx_J"] == pytest.approx(mine["energy_tx_J"].sum(), rel=1e-9)
        assert row["energy_rx_J"] == pytest.approx(mine["energy_rx_J"].sum(), rel=1e-9)
        idle = node["idle_power_W"] * (row["idle_s"] - row["down_s"])
        assert row["energy_idle_J"] == pytest.approx(idle, rel=1e-9)
        total = mine["energy_J"].sum() + idle
        assert row["energy_J"] == pytest.approx(total, rel=1e-9)


def test_same_requests_in_every_mode() -> None:
    tables = [run(mode)[1].tables["requests"] for mode in MODES]
    for t in tables[1:]:
        pd.testing.assert_series_equal(t["arrival"], tables[0]["arrival"])
        pd.testing.assert_series_equal(t["image"], tables[0]["image"])


def test_split_sends_fewer_bytes_than_png_and_scores_come_from_the_models() -> None:
    scenario, png = run("png")
    _, split = run("split")
    assert split.final["bytes_per_request"] < 0.5 * png.final["bytes_per_request"]
    # every request's scores are the models' on its image, served as the mode says
    pipes = Pipelines(trained(scenario.algorithm.training))
    data = modes.inference_set(scenario.algorithm.training, scenario.algorithm.images)
    for result, predict in (
        (png, pipes.teacher),  # PNG is lossless: the teacher sees the image itself
        (split, lambda x: pipes.split_decode(pipes.split_encode(x, 1.0), 1.0)),
    ):
        requests = result.tables["requests"]
        index = requests["image"].to_numpy()
        # one image at a time, as requests are served (torch rounds batches differently)
        expected = pd.DataFrame([score(predict(data.images[[i]]), data, [i]) for i in index])
        expected = {k: np.concatenate(expected[k].to_list()) for k in expected}
        np.testing.assert_array_equal(requests["correct"], expected["correct"])
        np.testing.assert_array_equal(requests["mask_iou"], expected["mask_iou"])
        np.testing.assert_array_equal(requests["box_iou"], expected["box_iou"])


def test_summary_percentiles_and_throughput() -> None:
    _, result = run("jpeg")
    requests = result.tables["requests"]
    final = result.final
    assert final["latency_p50_s"] == pytest.approx(np.percentile(requests["latency_s"], 50))
    assert final["latency_p99_s"] >= final["latency_p95_s"] >= final["latency_p50_s"]
    span = requests["done"].max() - requests["arrival"].min()
    assert final["throughput_rps"] == pytest.approx(len(requests) / span)
    metrics = result.metrics
    per_device = metrics[(metrics["metric"] == "latency_p95_s") & (metrics["node"] >= 0)]
    assert sorted(per_device["node"]) == [1, 2, 3]
    rps = metrics[(metrics["metric"] == "throughput_rps") & (metrics["node"] == 2)]["value"]
    mine = requests[requests["device"] == 2]
    assert rps.item() == pytest.approx(len(mine) / (mine["done"].max() - mine["arrival"].min()))


@pytest.mark.slow
def test_server_queue_matches_md1_theory() -> None:
    """Poisson arrivals at one server with a deterministic service time: the
    mean wait is rho / (2 mu (1 - rho)) (Pollaczek-Khinchine). Uplinks are so
    fast that arrivals reach the server as they left the devices."""
    devices, rate = 10, 4.0
    probe = build("split_inference", **{**TINY, "mode": "split", "devices": devices})
    service_flops = probe.algorithm.program.costs.server_flops
    rho = 0.6
    server_flops = service_flops * devices * rate / rho
    scenario = build(
        "split_inference",
        **{**TINY, "mode": "split", "devices": devices, "rate": rate, "requests": 300},
        server_flops=server_flops,
        uplink_Bps=1e12,
        downlink_Bps=1e12,
    )
    requests = netsim.run(scenario).tables["requests"]
    mu = server_flops / service_flops
    expected = rho / (2 * mu * (1 - rho))
    measured = requests["server_queue_s"].mean()
    # 3,000 requests: the sample mean of M/D/1 waits at rho = 0.6 is within 15%
    assert measured == pytest.approx(expected, rel=0.15)


def test_replayed_arrivals(tmp_path) -> None:
    times = tmp_path / "arrivals.csv"
    times.write_text("device,time\n1,0.5\n2,0.25\n1,0.125\n3,2\n", encoding="utf-8")
    _, result = run("split", arrivals=str(times))
    requests = result.tables["requests"]
    got = sorted(zip(requests["device"], requests["arrival"], strict=True))
    assert got == [(1, 0.125), (1, 0.5), (2, 0.25), (3, 2.0)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dev,time\n1,0\n", "arrivals.csv:1: expected the header 'device,time'"),
        ("device,time\n1,x\n", "arrivals.csv:2: expected an integer device"),
        ("device,time\n9,1\n", "arrivals.csv:2: device 9 is not a requesting device"),
        ("device,time\n1,-1\n", "arrivals.csv:2: time must be a finite number >= 0"),
        ("device,time\n", "arrivals.csv: no arrivals"),
    ],
)
def test_bad_arrivals_file_is_one_clear_error(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "arrivals.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message.replace(".", r"\.")):
        netsim.run(build("split_inference", **TINY, arrivals=str(path)))


def test_cli_bad_parameter_exits_2_without_traceback(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    args = ["run", str(SCENARIOS / "split_inference.py"), "--set", "models=tiny"]
    code, _, err = run_cli([*args, "--set", "beta=0.123", "--out", str(out)], capsys)
    assert code == 2
    assert "beta: expected one of the trained values" in err
    assert "Traceback" not in err and not out.exists()


@pytest.mark.ray
def test_ray_gives_the_same_requests(ray_session: None) -> None:
    scenario, inline = run("split_per_task")
    on_ray = netsim.run(scenario, backend="ray", hosts=2)
    pd.testing.assert_frame_equal(on_ray.tables["requests"], inline.tables["requests"])
    pd.testing.assert_frame_equal(on_ray.metrics, inline.metrics)
