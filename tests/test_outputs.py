"""Results that are safe, traceable and refused cleanly: output directories
and plots never silently replaced, inputs never overwritten, unwritable
places refused before running, a signal during the write leaves nothing
half-written, provenance in every summary, and one line (exit 2, nothing
written) for each bad input found by trying netsim as a new user would."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

import netsim
from netsim.errors import InputError
from netsim.outputs import Terminated, check_terminated, terminated
from tests.conftest import ROOT, build
from tests.test_cli import run_cli

CONSENSUS = str(ROOT / "scenarios" / "consensus.py")
SMALL = ["--set", "nodes=8", "--set", "iterations=5"]
TRACE_HEADER = "# netsim failure trace v1\ntime,target,event,value\n"
BIN = Path(sys.executable).parent


def one_line_refusal(args: list[str], capsys: pytest.CaptureFixture[str], needle: str) -> None:
    code, _, err = run_cli(args, capsys)
    assert code == 2, err
    assert needle in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


@pytest.fixture
def run_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    out = tmp_path / "r1"
    assert run_cli(["run", CONSENSUS, *SMALL, "--quiet", "--out", str(out)], capsys)[0] == 0
    return out


# ------------------------------------------------------------------ run directories
def test_default_names_do_not_collide(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for _ in range(2):  # within the same second
        assert run_cli(["run", CONSENSUS, *SMALL, "--quiet"], capsys)[0] == 0
    made = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(made) == 2 and made[0] != made[1]
    assert all(p.startswith("consensus-") for p in made)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o755), (0o077, 0o700), (0o002, 0o775)])
def test_run_directories_take_their_permissions_from_the_umask(
    tmp_path: Path, capsys, umask: int, mode: int
) -> None:
    old = os.umask(umask)
    try:
        out = tmp_path / "r"
        assert run_cli(["run", CONSENSUS, *SMALL, "--quiet", "--out", str(out)], capsys)[0] == 0
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == mode
    assert (out / "summary.json").stat().st_mode & 0o777 == mode & 0o666


@pytest.mark.parametrize("where", ["/proc/x", "afile/sub"])
def test_an_unwritable_out_is_refused_before_running(
    tmp_path: Path, capsys, monkeypatch, where: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("")
    # iterations=10**7 would run for minutes: the refusal comes first
    args = ["run", CONSENSUS, "--set", "iterations=10000000", "--quiet", "--out", where]
    one_line_refusal(args, capsys, f"--out {where}:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_signal_during_the_write_leaves_nothing_behind(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    from netsim.outputs import Terminated

    def killed(*args: object, **kwargs: object) -> None:
        raise Terminated  # what SIGTERM raises, arriving in the middle of the write

    monkeypatch.setattr(nx, "write_graphml", killed)
    code, _, err = run_cli(
        ["run", CONSENSUS, *SMALL, "--quiet", "--out", str(tmp_path / "r")], capsys
    )
    assert code == 143 and "terminated" in err
    assert list(tmp_path.iterdir()) == []  # neither the run nor a temporary directory


def test_sigterm_mid_run_exits_cleanly_with_nothing_written(tmp_path: Path) -> None:
    out = tmp_path / "r"
    proc = subprocess.Popen(
        [
            str(BIN / "netsim"),
            "run",
            CONSENSUS,
            "--set",
            "iterations=2000000",
            "--quiet",
            "--out",
            str(out),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(4)  # imports done, simulating
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == ["netsim: terminated; nothing half-written was left"]
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ plots
def test_plot_outputs(run_dir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    plot = ["plot", str(run_dir), "--metric", "consensus_error", "-o"]
    code, out, _ = run_cli([*plot, "new/dir/p.png"], capsys)
    assert code == 0 and (tmp_path / "new/dir/p.png").stat().st_size > 1000
    code, out, _ = run_cli([*plot, "noext"], capsys)
    assert code == 0 and out.strip() == "noext.png" and (tmp_path / "noext.png").is_file()
    one_line_refusal([*plot, "noext"], capsys, "noext.png: exists; pass --force")
    assert run_cli([*plot, "noext", "--force"], capsys)[0] == 0
    one_line_refusal([*plot, "p.jpg"], capsys, "expected a .png file name")
    one_line_refusal([*plot, "/proc/a.png"], capsys, "-o /proc/a.png: cannot write in /proc")
    assert not list(tmp_path.glob(".*.png"))  # no temporary left


def test_plot_of_a_damaged_run_names_the_file(run_dir: Path, tmp_path: Path, capsys) -> None:
    truncated = (run_dir / "summary.json").read_text()[:50]
    for name, text, needle in (
        ("metrics.parquet", "garbage", "metrics.parquet: not a readable Parquet file"),
        ("summary.json", truncated, "summary.json: not valid JSON"),
    ):
        broken = tmp_path / f"broken-{name}"
        shutil.copytree(run_dir, broken)
        (broken / name).write_text(text)
        args = ["plot", str(broken), "--metric", "consensus_error", "-o", str(tmp_path / "x.png")]
        one_line_refusal(args, capsys, needle)
    assert not (tmp_path / "x.png").exists()


def test_trace_plot_refuses_to_overwrite(tmp_path: Path, capsys) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text(TRACE_HEADER + "1.0,node:0,down,\n2.0,node:0,up,\n")
    assert run_cli(["trace", "plot", str(trace)], capsys)[0] == 0
    one_line_refusal(["trace", "plot", str(trace)], capsys, "t.png: exists; pass --force")


# ------------------------------------------------------------------ traces
def test_trace_import_never_overwrites_its_input(tmp_path: Path, capsys) -> None:
    w = tmp_path / "w.csv"
    w.write_text("anything\n")
    for extra in ([], ["--force"]):
        one_line_refusal(
            ["trace", "import", "--format", "fta", str(w), str(w), *extra], capsys, "is an input"
        )
    assert w.read_text() == "anything\n"


def test_trace_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    from netsim.traces import read_trace

    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (TRACE_HEADER + "1.0,node:3,down,\n").encode())
    (event,) = read_trace(path)
    assert (event.time, event.event) == (1.0, "down")


def test_trace_info_with_a_negative_until_says_so(tmp_path: Path, capsys) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text(TRACE_HEADER + "1.0,node:0,down,\n")
    one_line_refusal(
        ["trace", "info", str(trace), "--until=-5"], capsys, "--until: expected a time > 0"
    )


def test_a_missing_map_file_is_called_a_map_file(tmp_path: Path, capsys) -> None:
    from tests.test_trace_import import FTA_HEAD, fta_row

    fta = tmp_path / "f.txt"
    fta.write_text(FTA_HEAD + fta_row(1, "0", "1000", "2000"))
    args = ["trace", "import", "--format", "fta", str(fta), str(tmp_path / "o.csv")]
    one_line_refusal([*args, "--map", str(tmp_path / "missing.csv")], capsys, "map file not found")


# ------------------------------------------------------------------ scenarios and parameters
@pytest.mark.parametrize(
    "flags, needle",
    [
        (["--set", "nodes=99999999999999999999"], "--set nodes=99999999999999999999: expected"),
        (["--set", "failures=nan"], "--set failures=nan: expected a number, not NaN"),
        (["--set", "failures=0.1", "--set", "mttr_s=0"], "mttr_s: expected"),
    ],
)
def test_bad_parameters_name_the_right_field(flags: list[str], needle: str, capsys) -> None:
    one_line_refusal(["run", CONSENSUS, *flags, "--quiet"], capsys, needle)


def test_a_scenario_must_hold_an_algorithm_and_an_undirected_graph() -> None:
    s = build("consensus", nodes=6, iterations=3)
    with pytest.raises(InputError, match="algorithm must be a netsim algorithm"):
        dataclasses.replace(s, algorithm=None)
    with pytest.raises(InputError, match=r"undirected nx\.Graph .* got DiGraph"):
        dataclasses.replace(s, graph=nx.DiGraph(s.graph))


def test_a_scenario_file_returning_no_algorithm_is_one_line(tmp_path: Path, capsys) -> None:
    f = tmp_path / "bad.py"
    f.write_text(
        "import networkx as nx\nimport netsim\n"
        "def scenario():\n"
        "    return netsim.Scenario(name='x', graph=nx.path_graph(3), algorithm=None)\n"
    )
    one_line_refusal(["run", str(f), "--quiet"], capsys, "algorithm must be a netsim algorithm")


def test_a_typo_in_a_series_name_raises() -> None:
    r = netsim.run(build("consensus", nodes=6, iterations=3))
    assert len(r.series("consensus_error")) == 4
    with pytest.raises(
        KeyError, match=r"no metric 'consensus_eror' network-wide; there are: .*consensus_error"
    ):
        r.series("consensus_eror")


# ------------------------------------------------------------------ provenance
def test_summary_records_where_the_run_came_from(run_dir: Path) -> None:
    p = json.loads((run_dir / "summary.json").read_text())["provenance"]
    assert p["scenario_file"] == CONSENSUS
    assert p["scenario_sha256"] == hashlib.sha256(Path(CONSENSUS).read_bytes()).hexdigest()
    assert p["netsim_version"] == netsim.__version__
    assert p["python"] == ".".join(map(str, sys.version_info[:3]))
    import numpy as np

    assert p["numpy_version"] == np.__version__
    in_git = (ROOT / ".git").exists()
    assert (p["git_revision"] is not None) == in_git
    assert p["command"] is None  # run in-process by the tests, not by the `netsim` command


def test_the_command_line_is_recorded(tmp_path: Path) -> None:
    out = tmp_path / "r"
    args = [str(BIN / "netsim"), "run", CONSENSUS, *SMALL, "--quiet", "--out", str(out)]
    subprocess.run(args, check=True)
    assert json.loads((out / "summary.json").read_text())["provenance"]["command"][1:] == args[1:]


# ------------------------------------------------------------------ sweeps
def sweep_args(out: Path, *extra: str, scenario: str = CONSENSUS) -> list[str]:
    return ["sweep", scenario, "--out", str(out), "--quiet", *extra]


@pytest.mark.parametrize(
    "source, needle",
    [
        (
            "def points():\n    yield {'nodes': 10}\n    raise RuntimeError('boom')\n",
            "points() raised RuntimeError after 1 points: boom",
        ),
        ("def points():\n    return 5\n", "points() must return an iterable of dicts, got int"),
        ("def points():\n    return [{1: 2}]\n", "point 0: parameter names are strings, got 1"),
        (
            "import itertools\ndef points():\n    for i in itertools.count():\n"
            "        yield {'seed': i}\n",
            "points() gave more than 100,000 points",
        ),
    ],
)
def test_bad_grid_files(tmp_path: Path, capsys, source: str, needle: str) -> None:
    g = tmp_path / "g.py"
    g.write_text(source)
    one_line_refusal(sweep_args(tmp_path / "s", "--grid-file", str(g)), capsys, needle)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--grid-file", "g.txt"], "expected a Python file (.py)"),
        (["--grid", "nodes=10,10"], "--grid nodes=10,10: value '10' given twice"),
        (["--grid", "failures=nan"], "expected a number, not NaN"),
        (["--grid", "nodes=10", "--memory=-1"], "--memory: expected a number of GB > 0"),
    ],
)
def test_bad_sweeps_write_nothing(tmp_path: Path, capsys, monkeypatch, extra, needle) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.txt").write_text("x")
    one_line_refusal(sweep_args(tmp_path / "s", *extra), capsys, needle)
    assert not (tmp_path / "s").exists()


def test_a_sweep_on_an_unreachable_cluster_writes_nothing(tmp_path: Path) -> None:
    # its own process: Ray may already run in this one (the tests' shared instance)
    args = [str(BIN / "netsim"), *sweep_args(tmp_path / "s", "--grid", "nodes=10")]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run(
        [*args, "--address", "127.0.0.1:9"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "netsim: error: --address 127.0.0.1:9: no Ray cluster answers there (Connection "
        "refused); start one with `ray start --head` or check the address"
    ]
    assert not (tmp_path / "s").exists()


def test_sweep_summary_of_damaged_files_names_them(tmp_path: Path, capsys) -> None:
    d = tmp_path / "s"
    d.mkdir()
    spec = {"scenario": CONSENSUS, "points": [{"nodes": 10}]}
    (d / "sweep.json").write_text(json.dumps({**spec, "surprise": 1}))
    pd.DataFrame({"point": [0], "status": ["done"]}).to_parquet(d / "sweep.parquet")
    one_line_refusal(["sweep-summary", str(d)], capsys, "unexpected key 'surprise'")
    (d / "sweep.json").write_text(json.dumps(spec))
    (d / "sweep.parquet").write_text("garbage")
    one_line_refusal(["sweep-summary", str(d)], capsys, "not a readable Parquet file")


@pytest.mark.ray
def test_resume_refuses_a_changed_scenario(tmp_path: Path, capsys) -> None:
    scenario = tmp_path / "consensus.py"
    scenario.write_text(Path(CONSENSUS).read_text())
    out = tmp_path / "s"
    args = sweep_args(out, "--grid", "nodes=6", "--grid", "iterations=3", scenario=str(scenario))
    assert run_cli(args, capsys)[0] == 0
    spec = json.loads((out / "sweep.json").read_text())
    assert spec["scenario_sha256"] == hashlib.sha256(scenario.read_bytes()).hexdigest()
    assert spec["provenance"]["netsim_version"] == netsim.__version__
    scenario.write_text(scenario.read_text() + "\n# edited\n")
    one_line_refusal([*args, "--resume"], capsys, "changed since the sweep began")
    assert run_cli([*args, "--resume", "--allow-changed"], capsys)[0] == 0
    code, table, _ = run_cli(["compare", str(out)], capsys)
    assert code == 0 and table.split()[:4] == ["point", "iterations", "nodes", "status"]
    png = tmp_path / "sweep.png"
    plot = ["plot", str(out), "--metric", "consensus_error", "--log", "-o", str(png)]
    assert run_cli(plot, capsys)[0] == 0 and png.read_bytes()[:4] == b"\x89PNG"  # a sweep as input
    sweep = netsim.load_sweep(out)
    assert list(sweep.table["status"]) == ["done"]
    assert sweep.run(0).summary["params"]["nodes"] == 6


# ------------------------------------------------------------------ reading results back
def test_a_run_reads_back_as_it_was(tmp_path: Path) -> None:
    scenario = build("consensus", nodes=8, iterations=20, failures=0.2, mttr_s=0.001)
    result = netsim.run(scenario)
    back = netsim.load_run(result.write(tmp_path / "r"))
    assert back.metrics.equals(result.metrics)
    assert back.failures == result.failures and len(back.failures) > 0
    assert sorted(back.graph.edges) == sorted(result.graph.edges)
    assert back.final == pytest.approx(result.final)


def test_device_tables_add_up_to_the_summary(tmp_path: Path) -> None:
    result = netsim.run(build("fedavg", clients=6, rounds=2))
    devices = netsim.device_table(result)
    assert len(devices) == result.summary["nodes"]
    assert devices["bytes_sent"].sum() == pytest.approx(result.summary["bytes_sent"])
    assert devices["energy_J"].sum() == pytest.approx(result.summary["energy_J"])
    np_sum = devices[["busy_s", "idle_s"]].sum(axis=1)
    assert np_sum.to_numpy() == pytest.approx(result.summary["sim_time"])  # per device
    by_class = netsim.class_table(result)
    assert by_class["devices"].sum() == len(devices)
    assert by_class["energy_J"].sum() == pytest.approx(result.summary["energy_J"])


def test_show_reprints_the_summary_and_compare_sets_runs_side_by_side(
    tmp_path: Path, capsys
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    code, printed, _ = run_cli(["run", CONSENSUS, *SMALL, "--out", str(a)], capsys)
    assert code == 0
    code, shown, _ = run_cli(["show", str(a)], capsys)
    assert code == 0 and shown.strip() == printed.strip()
    code, shown, _ = run_cli(["show", str(a), "--devices"], capsys)
    assert "per device:" in shown and "by device class:" in shown
    assert (
        run_cli(["run", CONSENSUS, *SMALL, "--set", "seed=4", "--quiet", "--out", str(b)], capsys)[
            0
        ]
        == 0
    )
    code, table, _ = run_cli(["compare", str(a), str(b)], capsys)
    header, first, second = table.strip().splitlines()
    assert header.split() == ["run", "seed", "final_consensus_error"]  # only what differs
    assert first.split()[:2] == [str(a), "0"] and second.split()[:2] == [str(b), "4"]
    one_line_refusal(["show", str(tmp_path)], capsys, "not a netsim run directory")


def test_list_prints_whole_first_sentences_without_markup() -> None:
    from netsim.scenario_file import first_sentence

    doc = """Trains :class:`~algorithms.learning.Learner` models with ``p`` over
    several lines, as in Smith et al. 2020 (e.g. a study). Then more.

    Details."""
    assert first_sentence(doc) == (
        "Trains Learner models with p over several lines, as in Smith et al. 2020 (e.g. a study)."
    )


# ------------------------------------------------------------------ plot features
def test_band_is_the_mean_and_std_over_runs_on_common_steps() -> None:
    from netsim.plots import band

    a = pd.DataFrame({"step": [0, 1, 2], "time": [0.0, 1.0, 2.0], "value": [1.0, 0.1, 0.01]})
    b = pd.DataFrame({"step": [0, 1], "time": [0.0, 3.0], "value": [1.0, 0.001]})
    steps, t, mu, low, high = band([a, b])
    assert list(steps) == [0, 1] and list(t) == [0.0, 2.0]  # step 2: only one run has it
    assert mu[1] - low[1] == pytest.approx(high[1] - mu[1])
    assert mu[1] == pytest.approx(0.0505) and high[1] - mu[1] == pytest.approx(0.0700036, rel=1e-5)
    _, _, mu, _, high = band([a, b], log=True)
    assert mu[1] == pytest.approx(0.01)  # geometric: 10^mean(-1, -3)
    assert high[1] / mu[1] == pytest.approx(10 ** np.sqrt(2))  # std of (-1, -3) is sqrt(2)


def test_plot_options_on_runs_of_several_seeds(tmp_path: Path, capsys) -> None:
    dirs = []
    for nodes in (8, 12):
        for seed in (0, 1):
            r = netsim.run(build("consensus", nodes=nodes, iterations=10, seed=seed))
            dirs.append(str(r.write(tmp_path / f"n{nodes}s{seed}")))
    for extra in (
        ["--mean", "--log"],
        ["--against", "nodes"],
        ["--node", "3", "--metric", "flops"],
    ):
        metric = [] if "--metric" in extra else ["--metric", "consensus_error"]
        out = tmp_path / f"p{len(list(tmp_path.glob('*.png')))}.png"
        code, printed, err = run_cli(["plot", *dirs, *metric, *extra, "-o", str(out)], capsys)
        assert code == 0, err
        assert printed.strip() == str(out) and out.read_bytes()[:4] == b"\x89PNG"
    one_line_refusal(
        [
            "plot",
            *dirs,
            "--metric",
            "consensus_error",
            "--against",
            "mu",
            "-o",
            str(tmp_path / "x"),
        ],
        capsys,
        "--against mu: not a parameter of every run",
    )
    one_line_refusal(
        ["plot", dirs[0], "--metric", "consensus_error", "--node", "3", "-o", str(tmp_path / "y")],
        capsys,
        "no metric of node 3 'consensus_error'",
    )


def test_trace_plots_grow_with_the_nodes_they_show(tmp_path: Path) -> None:
    from PIL import Image

    from netsim.plots import availability_chart
    from netsim.traces import FailureEvent

    events = [FailureEvent(1.0 + k, f"node:{k}", "down") for k in range(150)]
    small = availability_chart(events, tmp_path / "a.png", end=200.0, max_nodes=20)
    large = availability_chart(events, tmp_path / "b.png", end=200.0, max_nodes=150)
    assert Image.open(large).size[1] > 1.5 * Image.open(small).size[1]


def test_an_absurd_run_is_refused_with_its_estimate(capsys) -> None:
    one_line_refusal(
        ["run", CONSENSUS, "--set", "iterations=10000000000000", "--quiet"],
        capsys,
        "iterations=10,000,000,000,000 would need at least 1,000,000 GB for the metrics alone",
    )


def test_trace_outputs_in_unwritable_or_missing_places(tmp_path: Path, capsys) -> None:
    from tests.test_trace_import import FTA_HEAD, fta_row

    fta = tmp_path / "f.txt"
    fta.write_text(FTA_HEAD + fta_row(1, "0", "1000", "2000"))
    one_line_refusal(
        ["trace", "import", "--format", "fta", str(fta), "/proc/x.csv"],
        capsys,
        "output /proc/x.csv: cannot write in /proc",
    )
    trace = tmp_path / "t.csv"
    trace.write_text(TRACE_HEADER + "1.0,node:0,down,\n2.0,node:0,up,\n")
    out = tmp_path / "new" / "dir" / "t.png"
    assert run_cli(["trace", "plot", str(trace), "-o", str(out)], capsys)[0] == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_an_address_where_something_else_listens_is_one_line(tmp_path: Path) -> None:
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def answer() -> None:  # a listener that is not Ray: accepts, then hangs up
        for _ in range(20):
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=answer, daemon=True).start()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run(
        [str(BIN / "netsim"), "run", CONSENSUS, *SMALL, "--address", f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    server.close()
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no Ray cluster answers there" in lines[0], proc.stderr


def _descendants_named(pid: int, needle: str) -> bool:
    """Whether a process under ``pid`` has ``needle`` in its command line (from /proc)."""
    parent: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            names[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        parent[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    for p, name in names.items():
        q = p
        while q in parent and q != pid and q > 1:
            q = parent[q]
        if q == pid and needle in name:
            return True
    return False


@pytest.mark.ray
@pytest.mark.slow
def test_sigterm_on_ray_exits_cleanly_too(tmp_path: Path) -> None:
    """Ray installs its own SIGTERM handlers (a stack dump, exit 15) at start:
    netsim puts its own back."""
    out = tmp_path / "r"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.Popen(
        [
            str(BIN / "netsim"),
            "run",
            CONSENSUS,
            "--backend",
            "ray",
            "--hosts",
            "1",
            "--set",
            "iterations=2000000",
            "--quiet",
            "--out",
            str(out),
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 180
    while not _descendants_named(proc.pid, "raylet") and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(8)  # the host actor started, the run under way
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == ["netsim: terminated; nothing half-written was left"]
    assert list(tmp_path.iterdir()) == []


def test_a_sigterm_lost_in_a_finalizer_still_ends_the_run() -> None:
    """Python ignores an exception raised inside a garbage collector's
    finalizer, as SIGTERM's can be (Ray's hosts free payloads through
    finalizers every round): the engine raises it again as the run goes on."""
    went_on = []
    hook = sys.unraisablehook
    with pytest.raises(Terminated), terminated():
        holder = type("Holder", (), {})()
        weakref.finalize(holder, os.kill, os.getpid(), signal.SIGTERM)
        del holder  # the finalizer runs; the handler's exception is lost there
        went_on.append(True)
        check_terminated()  # (Simulation.progress calls it every round)
    assert went_on == [True]
    check_terminated()  # outside terminated(): nothing pending
    assert sys.unraisablehook is hook  # put back


def test_an_algorithms_tables_are_written_read_back_and_replaced(tmp_path: Path) -> None:
    result = netsim.run(build("consensus", nodes=6, iterations=3))
    table = pd.DataFrame({"device": [1, 2], "latency_s": [0.5, 0.25]})
    with_table = dataclasses.replace(result, tables={"requests": table})
    out = with_table.write(tmp_path / "run")
    pd.testing.assert_frame_equal(netsim.load_run(out).tables["requests"], table)
    # a run without that table, written over it with --force: no stale table is left
    result.write(out, force=True)
    assert not (out / "requests.parquet").exists()
    assert netsim.load_run(out).tables == {}
    (out / "broken.parquet").write_text("not parquet", encoding="utf-8")
    with pytest.raises(InputError, match=r"broken\.parquet: not a readable Parquet file"):
        netsim.load_run(out)
