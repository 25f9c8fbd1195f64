"""Sweeps: specification, a real two-node Ray cluster, worker deaths, resume."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import netsim
from netsim import cli, sweep
from netsim.errors import InputError
from tests.conftest import ROOT, build
from tests.test_cli import run_cli

CONSENSUS = str(ROOT / "scenarios" / "consensus.py")
BIN = Path(sys.executable).parent
# the columns that must not depend on where, when or how often a point ran
STABLE = [
    "point",
    "nodes",
    "seed",
    "status",
    "final_consensus_error",
    "sim_time",
    "events",
    "messages_sent",
    "messages_delivered",
    "messages_dropped",
    "messages_in_flight",
    "bytes_sent",
]


# ------------------------------------------------------------------ specification
def test_axes_expand_to_the_cartesian_product() -> None:
    spec = sweep.build_spec(CONSENSUS, grid=["topology=ring,grid", "nodes=9,16"], seeds=2)
    assert len(spec.points) == 8
    assert spec.points[0] == {"topology": "ring", "nodes": 9, "seed": 0}
    assert {p["topology"] for p in spec.points} == {"ring", "grid"}


def test_zipped_parameters_vary_together() -> None:
    spec = sweep.build_spec(
        CONSENSUS,
        zipped=["nodes=10,20,30", "iterations=5,6,7"],
        grid=["weights=metropolis,uniform"],
    )
    assert len(spec.points) == 6
    assert {(p["nodes"], p["iterations"]) for p in spec.points} == {(10, 5), (20, 6), (30, 7)}


def test_grid_file_points(tmp_path: Path) -> None:
    grid = tmp_path / "grid.py"
    grid.write_text(
        "def points():\n"
        "    for n in (8, 16):\n"
        "        for t in ('ring', 'complete'):\n"
        "            if not (t == 'complete' and n == 16):  # a conditional point\n"
        "                yield {'nodes': n, 'topology': t}\n"
    )
    spec = sweep.build_spec(CONSENSUS, grid_file=grid, seeds=2)
    assert len(spec.points) == 6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "the sweep is empty"),
        ({"grid": ["nodes="]}, "--grid nodes=: empty value"),
        ({"grid": ["nodes=8,,16"]}, "--grid nodes=8,,16: empty value"),
        ({"grid": ["nodes=8,x"]}, "--grid nodes=8,x: expected an integer (value 'x')"),
        ({"grid": ["nodez=8"]}, "unknown parameter 'nodez'; did you mean 'nodes'?"),
        ({"grid": ["algorithm=sync,push"]}, "expected one of sync, gossip (value 'push')"),
        ({"grid": ["nodes=8", "nodes=9"]}, "--grid nodes: the parameter is given twice"),
        (
            {"zipped": ["nodes=8,9", "iterations=5"]},
            "--zip: every zipped parameter needs the same number of values",
        ),
        ({"grid": ["seed=1,2"], "seeds": 3}, "--seeds: the seed is already an axis"),
    ],
)
def test_bad_specifications_fail_at_once(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError) as e:
        sweep.build_spec(CONSENSUS, **kwargs)
    assert message in str(e.value)


def test_bad_grid_file_point(tmp_path: Path) -> None:
    grid = tmp_path / "grid.py"
    grid.write_text("def points():\n    return [{'nodes': 8}, {'nodes': 'many'}]\n")
    with pytest.raises(InputError, match=r"grid\.py: point 1: nodes: expected int, got 'many'"):
        sweep.build_spec(CONSENSUS, grid_file=grid)


def test_refuses_a_directory_holding_another_sweep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s"
    spec = sweep.build_spec(CONSENSUS, grid=["nodes=8,9"])
    sweep.prepare_dir(out, spec, resume=False)
    other = sweep.build_spec(CONSENSUS, grid=["nodes=8,10"])
    code, _, err = run_cli(["sweep", CONSENSUS, "--grid", "nodes=8,10", "--out", str(out)], capsys)
    assert (
        code == 2
        and "holds a different sweep (2 points of" in err
        and "choose a new directory" in err
    )
    code, _, err = run_cli(["sweep", CONSENSUS, "--grid", "nodes=8,9", "--out", str(out)], capsys)
    assert code == 2 and "already holds this sweep; add --resume" in err
    assert other.points != spec.points


def test_unreachable_cluster_fails_within_seconds(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    done = subprocess.run(
        [
            str(BIN / "netsim"),
            "sweep",
            CONSENSUS,
            "--grid",
            "nodes=8,9",
            "--address",
            f"127.0.0.1:{port}",
            "--out",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "no Ray cluster answers there" in done.stderr
    assert time.monotonic() - start < 30


# ------------------------------------------------------------------ running on the shared local Ray
@pytest.mark.ray
def test_sweep_table_and_summary(
    ray_session: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s"
    code, stdout, _ = run_cli(
        [
            "sweep",
            CONSENSUS,
            "--grid",
            "topology=ring,complete",
            "--grid",
            "nodes=8,12",
            "--seeds",
            "2",
            "--out",
            str(out),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0 and "8 points: 8 done" in stdout
    table = pd.read_parquet(out / "sweep.parquet")
    assert len(table) == 8 and table["point"].is_unique and (table["status"] == "done").all()
    # each row is that point's own run
    row = table.iloc[5]
    direct = netsim.run(
        build("consensus", topology=row["topology"], nodes=int(row["nodes"]), seed=int(row["seed"]))
    )
    assert row["final_consensus_error"] == direct.final["consensus_error"]
    assert (
        json.loads((out / row["run_dir"] / "summary.json").read_text())["params"]["nodes"]
        == row["nodes"]
    )
    code, stdout, _ = run_cli(["sweep-summary", str(out)], capsys)
    assert code == 0
    assert (
        "final_consensus_error_mean" in stdout and len(stdout.strip().splitlines()) == 5
    )  # header + 4 groups


@pytest.mark.ray
def test_a_failing_point_is_recorded_and_the_sweep_goes_on(
    ray_session: None, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "s"
    # a torus needs at least 9 nodes: the 4-node point fails, the others run
    code, stdout, _ = run_cli(
        [
            "sweep",
            CONSENSUS,
            "--grid",
            "topology=torus",
            "--grid",
            "nodes=4,9,16",
            "--out",
            str(out),
            "--quiet",
        ],
        capsys,
    )
    assert code == 1 and "3 points: 2 done" in stdout and "1 failed" in stdout
    table = pd.read_parquet(out / "sweep.parquet").set_index("nodes")
    assert (
        table.loc[4, "status"] == "failed"
        and "nodes must be an integer >= 9, got 4" in table.loc[4, "error"]
    )
    assert (table.loc[[9, 16], "status"] == "done").all()


# ------------------------------------------------------------------ a real two-node cluster
@pytest.mark.ray
@pytest.mark.slow
def test_sweep_on_a_two_node_cluster(
    two_node_cluster: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    address, env = two_node_cluster
    out = tmp_path / "s"
    done = subprocess.run(
        [
            str(BIN / "netsim"),
            "sweep",
            CONSENSUS,
            "--grid",
            "nodes=150,200,250,300",
            "--grid",
            "iterations=400",
            "--seeds",
            "3",
            "--address",
            address,
            "--out",
            str(out),
            "--quiet",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    table = pd.read_parquet(out / "sweep.parquet")
    assert len(table) == 12 and sorted(table["point"]) == list(range(12))
    assert (table["status"] == "done").all()
    assert table["ray_node"].nunique() == 2  # points ran on both nodes


# ------------------------------------------------------------------ faults and resume
def _sweep_process(out: Path, extra: list[str] = ()) -> subprocess.Popen[str]:
    env = {**os.environ}
    env.pop("RAY_ADDRESS", None)
    return subprocess.Popen(
        [
            str(BIN / "netsim"),
            "sweep",
            CONSENSUS,
            "--grid",
            "nodes=200,300",
            "--grid",
            "iterations=600",
            "--seeds",
            "6",
            "--out",
            str(out),
            "--quiet",
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a test run started in the background ignores
        # Ctrl-C, and its children would inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for_points(
    out: Path, count: int, proc: subprocess.Popen[str], timeout: float = 300
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(list((out / "points").glob("*/summary.json"))) >= count:
            return
        if proc.poll() is not None:
            pytest.fail(f"sweep ended early: {proc.communicate()}")
        time.sleep(0.1)
    pytest.fail("timed out waiting for points")


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The reference: the same 12-point sweep, undisturbed."""
    out = tmp_path_factory.mktemp("ref") / "s"
    proc = _sweep_process(out)
    assert proc.wait(timeout=600) == 0, proc.communicate()
    return pd.read_parquet(out / "sweep.parquet")


@pytest.mark.ray
@pytest.mark.slow
def test_a_killed_worker_is_retried_and_nothing_is_lost(
    undisturbed: pd.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / "s"
    proc = _sweep_process(out)
    _wait_for_points(out, 2, proc)
    victims = []
    deadline = time.monotonic() + 60
    while not victims and time.monotonic() < deadline:
        for p in Path("/proc").iterdir():
            if p.name.isdigit():
                try:
                    if (p / "cmdline").read_bytes().startswith(b"ray::run_point"):
                        victims.append(int(p.name))
                except OSError:
                    continue
        time.sleep(0.05)
    assert victims, "no worker was running a point"
    os.kill(victims[0], signal.SIGKILL)  # a worker dies mid-point
    assert proc.wait(timeout=600) == 0, proc.communicate()
    table = pd.read_parquet(out / "sweep.parquet")
    assert (table["status"] == "done").all() and len(table) == 12
    pd.testing.assert_frame_equal(table[STABLE], undisturbed[STABLE])


@pytest.mark.ray
@pytest.mark.slow
def test_interrupt_then_resume_runs_only_what_is_missing(
    undisturbed: pd.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / "s"
    proc = _sweep_process(out, ["--max-in-flight", "1"])  # one at a time: Ctrl-C lands mid-sweep
    _wait_for_points(out, 3, proc)
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    out_text, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "--resume" in err, (proc.returncode, out_text, err)
    finished = {
        p.parent.name: p.stat().st_mtime_ns for p in (out / "points").glob("*/summary.json")
    }
    assert 3 <= len(finished) < 12
    proc = _sweep_process(out, ["--resume"])
    stdout, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, stdout
    assert f"{len(finished)} before this resume" in stdout
    after = {p.parent.name: p.stat().st_mtime_ns for p in (out / "points").glob("*/summary.json")}
    assert len(after) == 12
    assert all(after[name] == mtime for name, mtime in finished.items())  # none ran again
    table = pd.read_parquet(out / "sweep.parquet")
    pd.testing.assert_frame_equal(table[STABLE], undisturbed[STABLE])


def test_cli_sweep_help() -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["sweep", "--help"])
    assert e.value.code == 0
