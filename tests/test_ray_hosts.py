"""Ray as a user meets it: one host per CPU by default, one actor per device
when asked (refused when the cluster could not hold the actors), runs that
spread over a real two-node cluster, and no token warning on every run."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import netsim
from netsim.errors import InputError
from tests.cluster import BIN
from tests.conftest import ROOT, build
from tests.test_cli import run_cli

CONSENSUS = str(ROOT / "scenarios" / "consensus.py")


@pytest.mark.ray
def test_the_summary_says_how_many_hosts_and_why(ray_session: None, tmp_path: Path, capsys) -> None:
    out = tmp_path / "c"
    code, stdout, _ = run_cli(["run", CONSENSUS, "--backend", "ray", "--out", str(out)], capsys)
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["hosts"] == 2 and summary["hosts_chosen"] == "one per CPU of the cluster (2)"
    assert "ray, 2 host(s) (one per CPU of the cluster (2))" in stdout
    assert sum(summary["cluster_nodes"].values()) == 2


@pytest.mark.ray
def test_one_actor_per_device_is_refused_when_memory_cannot_hold_them(
    ray_session: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from netsim import ray_cluster

    monkeypatch.setattr(ray_cluster, "ACTOR_BYTES", 1e15)  # a machine far too small for 20 actors
    with pytest.raises(InputError, match=r"--hosts per-device: 20 actors, a worker process each"):
        netsim.run(build("consensus", nodes=20), backend="ray", hosts="per-device")


def test_hosts_flag() -> None:
    from netsim.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["run", CONSENSUS, "--hosts", "per-device"]).hosts == "per-device"
    assert parser.parse_args(["run", CONSENSUS, "--hosts", "3"]).hosts == 3
    with pytest.raises(InputError, match="--hosts: expected an integer >= 1 or 'per-device'"):
        netsim.run(build("consensus"), hosts="many")  # type: ignore[arg-type]


def _metrics(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "metrics.parquet")


@pytest.mark.ray
@pytest.mark.slow
def test_a_run_spreads_its_hosts_over_a_two_node_cluster(
    two_node_cluster: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """Found through RAY_ADDRESS, as Ray's own tools do, and with --address
    auto: the default of one host per CPU puts one on each node, and the
    metrics are the inline run's. Hosts on two nodes run their compiled graph
    over Ray's channels (sockets only join hosts on the driver's machine)."""
    address, env = two_node_cluster
    params = ["--set", "nodes=12", "--set", "iterations=40"]
    inline = tmp_path / "inline"
    subprocess.run(
        [str(BIN / "netsim"), "run", CONSENSUS, *params, "--out", str(inline), "--quiet"],
        check=True,
        timeout=300,
    )
    for name, extra in (("env", ["--backend", "ray"]), ("auto", ["--address", "auto"])):
        out = tmp_path / name
        done = subprocess.run(
            [str(BIN / "netsim"), "run", CONSENSUS, *params, *extra, "--out", str(out)],
            env={**env, "RAY_ADDRESS": address},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        summary = json.loads((out / "summary.json").read_text())
        assert summary["backend"] == "ray" and summary["hosts"] == 2  # 1 CPU on each node
        assert sorted(summary["cluster_nodes"].values()) == [1, 1], (name, summary)  # one on each
        assert "on 1 on node" in done.stdout  # the summary table says where they ran
        assert _metrics(out).equals(_metrics(inline))
        assert summary["host_transport"] == "ray channels", (name, summary)


@pytest.mark.ray
def test_no_token_warning_when_netsim_starts_ray(tmp_path: Path) -> None:
    """netsim starts the local instance with token authentication asked for
    explicitly, so Ray does not warn about it on every run; it stays on."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE")}
    done = subprocess.run(
        [str(BIN / "netsim"), "run", CONSENSUS, "--backend", "ray", "--out", str(tmp_path / "c")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Token authentication" not in done.stderr + done.stdout
