"""The command line: outputs, the summary, and one clear line for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest

from netsim import cli
from netsim.traces import read_trace
from tests.conftest import ROOT

CONSENSUS = str(ROOT / "scenarios" / "consensus.py")
DIFFUSION = str(ROOT / "scenarios" / "diffusion_lms.py")


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = cli.main(args)
    except SystemExit as e:  # argparse's own usage errors
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_run_writes_the_output_directory(tmp_path, capsys) -> None:
    out = tmp_path / "d1"
    code, stdout, _ = run_cli(
        [
            "run",
            DIFFUSION,
            "--set",
            "nodes=12",
            "--set",
            "mu=0.02",
            "--set",
            "iterations=200",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "failures.csv",
        "links.parquet",
        "metrics.parquet",
        "nodes.parquet",
        "summary.json",
        "topology.graphml",
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["params"]["nodes"] == 12 and summary["params"]["mu"] == 0.02
    assert summary["params"]["strategy"] == "atc"  # defaults are recorded too
    m = summary["messages"]
    assert m["sent"] == m["delivered"] + m["dropped"] + m["in_flight"] > 0
    assert set(summary) >= {
        "scenario",
        "seed",
        "backend",
        "sim_time",
        "wall_time_s",
        "events",
        "bytes_sent",
        "energy_J",
        "final",
    }
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert list(metrics.columns) == ["time", "step", "node", "metric", "value"]
    assert len(metrics[(metrics.metric == "msd_db") & (metrics.node == -1)]) == 201
    assert "final msd_db" in stdout and str(out) in stdout
    g = nx.read_graphml(out / "topology.graphml", node_type=int)
    assert g.is_directed() and g.number_of_nodes() == 12
    node = g.nodes[0]
    assert {
        "noise_var",
        "mu",
        "regressor_var",
        "self_weight",
        "compute_flops",
        "uplink_Bps",
    } <= set(node)
    for _, _, d in g.edges(data=True):
        assert {"weight", "latency_s", "bandwidth_Bps", "loss", "bytes"} <= set(d)
    assert sum(d["bytes"] for *_, d in g.edges(data=True)) > 0


def test_failures_csv_is_a_trace(tmp_path, capsys) -> None:
    out = tmp_path / "c"
    code, *_ = run_cli(
        [
            "run",
            CONSENSUS,
            "--set",
            "failures=0.3",
            "--set",
            "mttr_s=0.02",
            "--quiet",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0
    events = read_trace(out / "failures.csv")
    assert events and {e.event for e in events} <= {"down", "up"}
    replay = tmp_path / "r"
    assert (
        run_cli(
            [
                "run",
                CONSENSUS,
                "--set",
                "failures=0.3",
                "--set",
                "mttr_s=0.02",
                "--quiet",
                "--trace",
                str(out / "failures.csv"),
                "--out",
                str(replay),
            ],
            capsys,
        )[0]
        == 0
    )
    assert pd.read_parquet(replay / "metrics.parquet").equals(
        pd.read_parquet(out / "metrics.parquet")
    )
    assert json.loads((replay / "summary.json").read_text())["trace"] == str(out / "failures.csv")


def test_rerun_into_the_same_directory_is_refused_unless_forced(tmp_path, capsys) -> None:
    out = tmp_path / "same"
    assert run_cli(["run", CONSENSUS, "--quiet", "--out", str(out)], capsys)[0] == 0
    before = (out / "summary.json").read_text()
    again = ["run", CONSENSUS, "--quiet", "--set", "seed=3", "--out", str(out)]
    code, _, err = run_cli(again, capsys)
    assert code == 2 and "pass --force" in err and len(err.strip().splitlines()) == 1
    assert (out / "summary.json").read_text() == before  # untouched
    assert run_cli([*again, "--force"], capsys)[0] == 0
    assert json.loads((out / "summary.json").read_text())["seed"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["same"]  # no temporary left behind


def test_list_shows_algorithms_topologies_and_parameters(capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out, _ = run_cli(["list"], capsys)
    assert code == 0
    for word in (
        "diffusion_lms",
        "gossip",
        "erdos_renyi",
        "edge_cloud",
        "metropolis",
        "--set nodes=<int>",
        "--set strategy=<atc|cta|noncoop>",
    ):
        assert word in out


def _graph_file(tmp_path: Path, **node_attrs: float) -> str:
    g = nx.cycle_graph(4)
    for k in g.nodes:
        g.nodes[k].update(node_attrs)
    path = tmp_path / "g.graphml"
    nx.write_graphml(g, path)
    return str(path)


def _trace_file(tmp_path: Path, body: str) -> str:
    path = tmp_path / "t.csv"
    path.write_text("time,target,event,value\n" + body)
    return str(path)


BAD_INPUT = {
    "unknown parameter": (
        lambda t: ["run", CONSENSUS, "--set", "nodez=5"],
        "unknown parameter 'nodez'; did you mean 'nodes'?",
    ),
    "wrong type": (
        lambda t: ["run", CONSENSUS, "--set", "nodes=abc"],
        "--set nodes=abc: expected an integer",
    ),
    "not name=value": (
        lambda t: ["run", CONSENSUS, "--set", "nodes"],
        "--set nodes: expected name=value",
    ),
    "unknown topology": (
        lambda t: ["run", CONSENSUS, "--set", "topology=moebius"],
        "unknown topology 'moebius'",
    ),
    "unknown algorithm": (
        lambda t: ["run", CONSENSUS, "--set", "algorithm=push"],
        "--set algorithm=push: expected one of sync, gossip",
    ),
    "unknown strategy": (
        lambda t: ["run", DIFFUSION, "--set", "strategy=atx"],
        "expected one of atc, cta, noncoop",
    ),
    "disconnected": (
        lambda t: ["run", CONSENSUS, "--set", f"topology={_disconnected(t)}"],
        "disconnected (2 components)",
    ),
    "negative bandwidth": (
        lambda t: ["run", DIFFUSION, "--set", "bandwidth_Bps=-1"],
        "bandwidth_Bps: expected a number > 0",
    ),
    "negative step size": (
        lambda t: ["run", DIFFUSION, "--set", "mu=-0.1"],
        "mu: expected a finite number > 0, got -0.1",
    ),
    "negative budget": (
        lambda t: ["run", CONSENSUS, "--set", f"topology={_graph_file(t, compute_flops=-5.0)}"],
        "topology node 0: compute_flops: expected a finite number > 0, got -5.0",
    ),
    "malformed trace row": (
        lambda t: [
            "run",
            CONSENSUS,
            "--trace",
            _trace_file(t, "0.1,node:1,down,\nsoon,node:1,up,\n"),
        ],
        "t.csv:3: time: expected a number, got 'soon'",
    ),
    "trace names a missing node": (
        lambda t: ["run", CONSENSUS, "--trace", _trace_file(t, "0.1,node:99,down,\n")],
        "t.csv:2: target: node:99 does not exist (the topology has nodes 0..19)",
    ),
    "binary trace": (lambda t: ["run", CONSENSUS, "--trace", _binary(t)], "not a text trace file"),
    "missing trace": (
        lambda t: ["run", CONSENSUS, "--trace", str(t / "nope.csv")],
        "nope.csv: file not found",
    ),
    "missing scenario": (lambda t: ["run", str(t / "nope.py")], "nope.py: scenario file not found"),
    "broken scenario": (lambda t: ["run", _broken_scenario(t)], "broken.py:2: syntax error"),
    "broken graph file": (
        lambda t: ["run", CONSENSUS, "--set", f"topology={_broken_graphml(t)}"],
        "not a valid GraphML file",
    ),
    "out is a file": (
        lambda t: ["run", CONSENSUS, "--out", _a_file(t)],
        "exists and is not a directory",
    ),
    "address without ray": (
        lambda t: ["run", CONSENSUS, "--backend", "inline", "--address", "auto"],
        "--address joins a Ray cluster",
    ),
    "zero hosts": (
        lambda t: ["run", CONSENSUS, "--hosts", "0"],
        "--hosts: expected an integer >= 1 or per-device, got '0'",
    ),
    "unknown backend": (lambda t: ["run", CONSENSUS, "--backend", "mpi"], "invalid choice: 'mpi'"),
}


def _disconnected(t: Path) -> str:
    (t / "two.edgelist").write_text("0 1\n2 3\n")
    return str(t / "two.edgelist")


def _binary(t: Path) -> str:
    (t / "trace.bin").write_bytes(b"\x80\x04\x95\x00\x00\x00")
    return str(t / "trace.bin")


def _broken_scenario(t: Path) -> str:
    (t / "broken.py").write_text("def scenario(nodes: int = 3):\n    return (\n")
    return str(t / "broken.py")


def _broken_graphml(t: Path) -> str:
    (t / "bad.graphml").write_text("<graphml><graph>")
    return str(t / "bad.graphml")


def _a_file(t: Path) -> str:
    (t / "file").write_text("x")
    return str(t / "file")


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_one_clear_line_exit_2_nothing_written(
    tmp_path, capsys, monkeypatch, case: str
) -> None:
    monkeypatch.chdir(tmp_path)  # the default output directory would appear here
    args, message = BAD_INPUT[case]
    argv = args(tmp_path)
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    before = set(tmp_path.iterdir())
    code, _, err = run_cli(argv, capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert set(tmp_path.iterdir()) == before  # nothing written, not even an empty directory


def test_real_entry_point_exit_codes(tmp_path) -> None:
    netsim_bin = Path(sys.executable).parent / "netsim"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    bad = subprocess.run(
        [str(netsim_bin), "run", CONSENSUS, "--set", "nodes=-4", "--out", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert bad.returncode == 2
    assert (
        bad.stderr.strip()
        == "netsim: error: topology erdos_renyi: nodes must be an integer >= 2, got -4"
    )
    ok = subprocess.run(
        [str(netsim_bin), "run", CONSENSUS, "--set", "nodes=6", "--out", str(tmp_path / "ok")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    assert "final consensus_error" in ok.stdout
    helptext = subprocess.run(
        [str(netsim_bin), "run", "--help"], capture_output=True, text=True, env=env
    )
    assert "--trace" in helptext.stdout and "examples:" in helptext.stdout


def test_interrupted_write_leaves_nothing(tmp_path, capsys, monkeypatch) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(nx, "write_graphml", explode)
    with pytest.raises(OSError, match="disk full"):
        cli.main(["run", CONSENSUS, "--quiet", "--out", str(tmp_path / "out")])
    assert list(tmp_path.iterdir()) == []


def test_unreachable_ray_address_fails_fast(tmp_path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    netsim_bin = Path(sys.executable).parent / "netsim"
    start = time.monotonic()
    done = subprocess.run(
        [
            str(netsim_bin),
            "run",
            CONSENSUS,
            "--address",
            f"127.0.0.1:{port}",
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "no Ray cluster answers there" in done.stderr
    assert time.monotonic() - start < 30  # seconds, not Ray's minutes of retries
    assert not (tmp_path / "x").exists()


@pytest.mark.ray
def test_run_on_ray_from_the_command_line(ray_session: None, tmp_path, capsys) -> None:
    out = tmp_path / "c1"
    code, stdout, _ = run_cli(
        ["run", CONSENSUS, "--backend", "ray", "--hosts", "2", "--out", str(out)], capsys
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["backend"], summary["hosts"]) == ("ray", 2)
    assert "ray, 2 host(s)" in stdout


def test_placement_flag_changes_where_devices_run_not_results(tmp_path, capsys) -> None:
    summaries, metrics = {}, {}
    for placement in ("graph", "blocks"):
        out = tmp_path / placement
        args = ["run", CONSENSUS, "--hosts", "3", "--placement", placement, "--out", str(out)]
        code, _, _ = run_cli(args, capsys)
        assert code == 0
        summaries[placement] = json.loads((out / "summary.json").read_text())
        metrics[placement] = pd.read_parquet(out / "metrics.parquet")
    assert summaries["graph"]["placement"] == "graph"
    assert summaries["blocks"]["placement"] == "blocks"
    pd.testing.assert_frame_equal(metrics["graph"], metrics["blocks"])
    code, _, err = run_cli(["run", CONSENSUS, "--placement", "random"], capsys)
    assert code == 2 and "--placement" in err
