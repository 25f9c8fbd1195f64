"""FedCode (papers.md section 3) in the simulator: message sizes follow the
schedule exactly, k-means is charged to whoever runs it, and against FedAvg
it sends at least 10x fewer bytes for at most 2 points of accuracy (the paper:
12.2x and 1.3 points IID, 12.7x and 2.0 points non-IID)."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import pytest

import netsim
from algorithms import models
from algorithms.federated import FedCodeSchedule
from tests.conftest import ROOT, build
from tests.test_cli import run_cli

SCENARIO = str(ROOT / "scenarios" / "fedcode.py")

PARAMS = 64 * 200 + 200 + 200 * 10 + 10  # MLP 64-200-10


@cache
def run(codec: str, partition: str = "iid", rounds: int = 30) -> netsim.Result:
    return netsim.run(build("fedcode", codec=codec, partition=partition, rounds=rounds))


def network_series(r: netsim.Result, metric: str) -> list[float]:
    return r.series(metric)["value"].tolist()


def test_the_model_has_over_ten_thousand_parameters() -> None:
    assert models.parameter_count(models.build("mlp", (1, 8, 8), 10, 0, hidden=200)) == PARAMS
    assert PARAMS > 10_000


def test_message_sizes_follow_the_schedule() -> None:
    """Ten clients, every round: a whole model is 64 float32 centroids plus a
    6-bit index per weight; a codebook alone is the 64 centroids."""
    r = run("fedcode", rounds=6)
    whole, alone = 4 * 64 + math.ceil(PARAMS * 6 / 8), 4 * 64
    schedule = FedCodeSchedule(start_rnd=2, f1=5, f2=2)
    down = [10 * (whole if schedule.down(k) == "model" else alone) for k in range(1, 7)]
    up = [10 * (whole if schedule.up(k) == "model" else alone) for k in range(1, 7)]
    assert network_series(r, "bytes_down") == down
    assert network_series(r, "bytes_up") == up


def test_kmeans_is_charged_to_whoever_runs_it() -> None:
    """Same data, model and training: the FLOPs FedCode's clients and server
    spend beyond FedAvg's are their k-means runs (and the codebook lookups)."""
    fedcode, fedavg = run("fedcode", rounds=6), run("none", rounds=6)

    def flops(r: netsim.Result, node: int) -> float:
        return float(
            r.metrics[(r.metrics.metric == "flops") & (r.metrics.node == node)]["value"].iloc[0]
        )

    for node in range(11):
        extra = flops(fedcode, node) - flops(fedavg, node)
        # at least the k-means++ seeding, 3 n K (2 + ln K), of six encodings
        assert extra > 6 * 3 * PARAMS * 64 * (2 + math.log(64)), node


@pytest.mark.slow
@pytest.mark.parametrize("partition", ["iid", "dirichlet"])
def test_fedcode_against_fedavg(partition: str) -> None:
    fedcode, fedavg = run("fedcode", partition), run("none", partition)
    ratio = fedavg.summary["bytes_sent"] / fedcode.summary["bytes_sent"]
    assert ratio >= 10
    assert fedcode.final["accuracy"] >= fedavg.final["accuracy"] - 0.02
    assert fedavg.final["accuracy"] > 0.9  # a model worth compressing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "K=1"], "K: expected an integer >= 2, got 1"),
        (["--set", "f1=0"], "f1: expected an integer >= 1, got 0"),
        (
            ["--set", "codec=zip"],
            "--set codec=zip: expected one of none, fedcode, fp16, qsgd, topk",
        ),
        (["--set", "codec=topk", "--set", "topk_fraction=0"], "topk fraction: expected"),
        (["--set", "codec=qsgd", "--set", "qsgd_bits=0"], "qsgd bits: expected an integer >= 1"),
        (["--set", "uplink_Bps=0"], "topology node 1: uplink_Bps: expected a finite number > 0"),
    ],
)
def test_bad_fedcode_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = run_cli(["run", SCENARIO, *args, "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
