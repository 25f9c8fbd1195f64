"""Importing recorded traces: the LANL trace replayed exactly, the three
formats, the explicit choices, and bad input."""

from __future__ import annotations

import json
import pickle
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import netsim
from netsim import trace_import as ti
from netsim.errors import InputError
from netsim.traces import read_trace
from tests.conftest import ROOT, SHARED_TRACES, build
from tests.test_cli import run_cli

SUBSET = ROOT / "scenarios" / "data" / "lanl_2004_128nodes.tab"
FULL = SHARED_TRACES / "lanl_fta_event_trace.tab"
T2004 = datetime(2004, 1, 1, tzinfo=timezone.utc).timestamp()


def fta_truth(
    path: Path, devices: list[str], t0: float, t1: float
) -> tuple[np.ndarray, np.ndarray]:
    """Up fraction and number of down periods of each device over [t0, t1),
    straight from the FTA intervals (gaps count as down), with pandas."""
    cols = "event_id component_id node_id platform_id node_name event_type start stop reason"
    df = pd.read_csv(path, sep=r"\s+", skiprows=1, header=None, names=cols.split())
    up_frac, downs = [], []
    for device in devices:
        rows = df[(df.node_id == int(device)) & (df.event_type == 1)]
        s = np.clip(rows.start.to_numpy(float), t0, t1)
        e = np.clip(rows.stop.to_numpy(float), t0, t1)
        keep = e > s
        s, e = s[keep], e[keep]
        up_frac.append(float((e - s).sum()) / (t1 - t0))
        # down periods: the gaps between the available intervals within [t0, t1)
        order = np.argsort(s)
        s, e = s[order], e[order]
        bounds = np.concatenate([[t0], e]), np.concatenate([s, [t1]])
        downs.append(int(np.sum(bounds[1] > bounds[0])))
    return np.array(up_frac), np.array(downs)


def replayed(result: netsim.Result, n: int, end: float) -> tuple[np.ndarray, np.ndarray]:
    """Up fraction of [0, end) and number of down events of each node, read
    back from the run's failures.csv."""
    down_time, downs, since = np.zeros(n), np.zeros(n, int), {}
    for e in result.failures_frame().itertuples():
        k = int(e.target.split(":")[1])
        if e.time >= end:
            continue
        if e.event == "down":
            since[k] = e.time
            downs[k] += 1
        elif e.event == "up":
            down_time[k] += e.time - since.pop(k)
    for k, t in since.items():
        down_time[k] += end - t
    return 1 - down_time / end, downs


CASES = [pytest.param(SUBSET, 2004, 128, id="lanl-2004-slice")]
if FULL.exists():
    CASES.append(pytest.param(FULL, 2003, 600, id="lanl-full-2003"))


@pytest.mark.parametrize(("path", "year", "nodes"), CASES)
def test_lanl_replay_matches_the_fta_intervals(tmp_path, path: Path, year: int, nodes: int) -> None:
    t0 = datetime(year, 1, 1, tzinfo=timezone.utc).timestamp()
    t1 = datetime(year + 1, 1, 1, tzinfo=timezone.utc).timestamp()
    out = tmp_path / "lanl.csv"
    code = netsim_cli(
        [
            "trace",
            "import",
            "--format",
            "fta",
            str(path),
            str(out),
            "--start",
            f"{year}-01-01",
            "--duration",
            f"{t1 - t0}",
            "--scale",
            f"{(t1 - t0) / 0.5}",
            "--nodes",
            str(nodes),
        ]
    )
    assert code == 0
    mapping = [
        line.split()[-1] for line in out.read_text().splitlines() if line.startswith("# node ")
    ]
    assert len(mapping) == nodes
    # a consensus run long enough to cover the 0.5 simulated seconds of the window
    result = netsim.run(build("consensus", nodes=nodes, iterations=150), trace=out)
    assert result.summary["sim_time"] > 0.5
    up, downs = replayed(result, nodes, 0.5)
    want_up, want_downs = fta_truth(path, mapping, t0, t1)
    np.testing.assert_allclose(up, want_up, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(downs, want_downs)
    assert want_downs.sum() > nodes  # the window holds real failures


def netsim_cli(argv: list[str]) -> int:
    from netsim import cli

    return cli.main(argv)


def test_different_algorithms_see_identical_failure_times(tmp_path) -> None:
    """Consensus and diffusion on the same LANL replay: their failures.csv agree."""
    files = []
    for algorithm in ("consensus", "diffusion"):
        r = netsim.run(build("trace_replay", algorithm=algorithm, nodes=32, iterations=300))
        files.append(r.write(tmp_path / algorithm) / "failures.csv")
    a, b = (read_trace(f) for f in files)
    assert len(a) > 50
    assert [(e.time, e.target, e.event) for e in a] == [(e.time, e.target, e.event) for e in b]


def test_trace_replay_scenario_against_no_failures() -> None:
    with_failures = netsim.run(build("trace_replay", nodes=32, iterations=600))
    without = netsim.run(build("trace_replay", nodes=32, iterations=600, replay=False))
    assert with_failures.summary["failures"] > 50 and without.summary["failures"] == 0
    assert with_failures.final["msd_db"] > without.final["msd_db"]  # failures cost accuracy
    assert with_failures.summary["sim_time"] == pytest.approx(without.summary["sim_time"])


# ------------------------------------------------------------------ formats and choices
def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def events_of(imported: ti.Imported) -> list[tuple[float, str, str]]:
    return [(e.time, e.target, e.event) for e in imported.events]


def test_windows_json_and_csv_agree(tmp_path) -> None:
    as_json = write(tmp_path, "w.json", json.dumps({"a": [[10, 20], [30, 50]], "b": [[0, 100]]}))
    as_csv = write(tmp_path, "w.csv", "device,start,end\na,10,20\nb,0,100\na,30,50\n")
    sel = ti.Selection(start=0, duration=100, scale=10)
    a, b = ti.to_events(ti.read_windows(as_json), sel), ti.to_events(ti.read_windows(as_csv), sel)
    assert (
        events_of(a)
        == events_of(b)
        == [
            (0.0, "node:0", "down"),
            (1.0, "node:0", "up"),
            (2.0, "node:0", "down"),
            (3.0, "node:0", "up"),
            (5.0, "node:0", "down"),
        ]
    )
    assert a.mapping == ["a", "b"]


def test_gap_unknown_keeps_the_last_state(tmp_path) -> None:
    path = write(tmp_path, "w.csv", "device,start,end\na,10,20\na,30,40\n")
    down = ti.to_events(ti.read_windows(path), ti.Selection(start=0, duration=50, gap="down"))
    unknown = ti.to_events(ti.read_windows(path), ti.Selection(start=0, duration=50, gap="unknown"))
    assert [e.time for e in down.events] == [0, 10, 20, 30, 40]
    assert unknown.events == []  # only known state: up; gaps keep it


def test_sessions_text_and_json(tmp_path) -> None:
    text = write(tmp_path, "s.txt", "# device start first durations\nx 5 up 10 5 10\ny 0 down 20\n")
    js = write(
        tmp_path,
        "s.json",
        json.dumps(
            {
                "x": {"start": 5, "first": "up", "durations": [10, 5, 10]},
                "y": {"start": 0, "first": "down", "durations": [20]},
            }
        ),
    )
    # y's log ends down: with gap "unknown" it stays down after it
    sel = ti.Selection(start=0, duration=40, gap="unknown")
    a, b = ti.to_events(ti.read_sessions(text), sel), ti.to_events(ti.read_sessions(js), sel)
    assert (
        events_of(a)
        == events_of(b)
        == [
            (0.0, "node:1", "down"),
            (15.0, "node:0", "down"),
            (20.0, "node:0", "up"),
        ]
    )


def test_node_mapping_choices(tmp_path) -> None:
    rows = "".join(f"d{i},0,{10 + i}\n" for i in range(20))
    trace = ti.read_windows(write(tmp_path, "w.csv", "device,start,end\n" + rows))
    first = ti.to_events(trace, ti.Selection(start=0, duration=50, nodes=5))
    assert first.mapping == ["d0", "d1", "d10", "d11", "d12"]  # string ids sort as strings
    s1 = ti.to_events(trace, ti.Selection(start=0, duration=50, nodes=5, sample_seed=1))
    s1_again = ti.to_events(trace, ti.Selection(start=0, duration=50, nodes=5, sample_seed=1))
    s2 = ti.to_events(trace, ti.Selection(start=0, duration=50, nodes=5, sample_seed=2))
    assert s1.mapping == s1_again.mapping != s2.mapping
    mapped = ti.to_events(
        trace,
        ti.Selection(
            start=0, duration=50, map_file=write(tmp_path, "m.csv", "trace_id,node\nd7,1\nd3,0\n")
        ),
    )
    assert mapped.mapping == ["d3", "d7"]
    assert events_of(mapped) == [(13.0, "node:0", "down"), (17.0, "node:1", "down")]


def test_numeric_ids_sort_numerically(tmp_path) -> None:
    path = write(tmp_path, "w.csv", "device,start,end\n10,0,5\n9,0,5\n100,0,5\n")
    assert ti.to_events(ti.read_windows(path), ti.Selection(duration=10)).mapping == [
        "9",
        "10",
        "100",
    ]


def test_info_and_plot(tmp_path, capsys) -> None:
    trace = write(
        tmp_path,
        "t.csv",
        "time,target,event,value\n0,node:0,down,\n2,node:0,up,\n4,node:1,down,\n6,node:0,down,\n8,node:0,up,\n",
    )
    code, out, _ = run_cli(["trace", "info", str(trace), "--until", "10"], capsys)
    assert code == 0
    # node 0 down 4 of 10 s, node 1 down 6 of 10 s: availability 0.6 and 0.4
    assert "mean 0.5000  min 0.4000  max 0.6000" in out
    assert "failures         3" in out
    assert "MTBF             3.33333 s" in out and "MTTR             3.33333 s" in out
    code, out, _ = run_cli(["trace", "plot", str(trace), "-o", str(tmp_path / "a.png")], capsys)
    assert code == 0 and (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"


# ------------------------------------------------------------------ bad input
FTA_HEAD = (
    "# event_id component_id node_id platform_id node_name event_type "
    "event_start_time event_stop_time event_end_reason\n"
)


def fta_row(node: int, kind: str, start: str, stop: str) -> str:
    return f"0 0 {node} 3 1.0 {kind} {start} {stop} NULL\n"


BAD = {
    "malformed row": (
        "fta",
        "t.tab",
        FTA_HEAD + "0 0 1 3 1.0 1 100\n",
        "t.tab:2: expected 9 columns",
    ),
    "non-numeric time": (
        "fta",
        "t.tab",
        FTA_HEAD + fta_row(1, "1", "soon", "200"),
        "t.tab:2: event_start_time: expected a number, got 'soon'",
    ),
    "unknown event type": (
        "fta",
        "t.tab",
        FTA_HEAD + fta_row(1, "7", "100", "200"),
        "t.tab:2: event_type: expected 0 (unavailable) or 1 (available), got '7'",
    ),
    "times backwards": (
        "fta",
        "t.tab",
        FTA_HEAD + fta_row(1, "1", "100", "200") + fta_row(1, "0", "50", "60"),
        "t.tab:3: start: 50.0 goes backwards for device 1",
    ),
    "overlapping intervals": (
        "fta",
        "t.tab",
        FTA_HEAD + fta_row(1, "1", "100", "200") + fta_row(1, "0", "150", "300"),
        "t.tab:3: start: interval [150.0, 300.0) overlaps the previous one of device 1",
    ),
    "end before start": (
        "windows",
        "w.csv",
        "device,start,end\na,10,5\n",
        "w.csv:2: end: 5.0 is before start 10.0",
    ),
    "overlapping windows": (
        "windows",
        "w.csv",
        "device,start,end\na,0,10\na,5,20\n",
        "w.csv:3: start: interval [5.0, 20.0) overlaps",
    ),
    "bad windows header": (
        "windows",
        "w.csv",
        "id,from,to\na,0,1\n",
        "w.csv:1: expected the header 'device,start,end'",
    ),
    "bad json": ("windows", "w.json", '{"a": [[0, 1]', "w.json:1: not valid JSON"),
    "unknown session state": (
        "sessions",
        "s.txt",
        "a 0 sleeping 10\n",
        "s.txt:1: first_state: expected up or down, got 'sleeping'",
    ),
    "negative duration": (
        "sessions",
        "s.txt",
        "a 0 up -3\n",
        "s.txt:1: duration 1: expected a number >= 0",
    ),
    "empty trace": ("fta", "t.tab", FTA_HEAD, "t.tab: empty trace: no event rows"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_recorded_traces(tmp_path, capsys, case: str) -> None:
    fmt, name, text, message = BAD[case]
    path = write(tmp_path, name, text)
    code, _, err = run_cli(
        ["trace", "import", "--format", fmt, str(path), str(tmp_path / "out.csv")], capsys
    )
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("fmt", ["fta", "windows", "sessions"])
def test_pickle_is_refused(tmp_path, capsys, fmt: str) -> None:
    path = tmp_path / "trace.pkl"
    path.write_bytes(pickle.dumps({"a": [(0, 1)]}))
    code, _, err = run_cli(
        ["trace", "import", "--format", fmt, str(path), str(tmp_path / "o.csv")], capsys
    )
    assert code == 2 and "binary content" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nodes", "500"], "--nodes 500: only 128 devices have data in the window"),
        (["--start", "2030-01-01"], "the window is empty (the trace ends at"),
        (["--start", "yesterday"], "--start yesterday: expected seconds or an ISO date"),
        (
            ["--duration", "3 fortnights"],
            "--duration 3 fortnights: expected seconds or a number with a unit",
        ),
        (["--scale", "0"], "--scale: expected a number > 0"),
    ],
)
def test_bad_import_choices(tmp_path, capsys, args: list[str], message: str) -> None:
    code, _, err = run_cli(
        ["trace", "import", "--format", "fta", str(SUBSET), str(tmp_path / "o.csv"), *args], capsys
    )
    assert code == 2 and message in err


def test_trace_with_more_nodes_than_the_topology(tmp_path, capsys) -> None:
    out = tmp_path / "big.csv"
    assert (
        netsim_cli(["trace", "import", "--format", "fta", str(SUBSET), str(out), "--scale", "1e6"])
        == 0
    )
    capsys.readouterr()
    code, _, err = run_cli(
        [
            "run",
            str(ROOT / "scenarios" / "consensus.py"),
            "--trace",
            str(out),
            "--out",
            str(tmp_path / "r"),
        ],
        capsys,
    )
    assert code == 2
    assert "does not exist (the topology has nodes 0..19; the trace names" in err
    with pytest.raises(InputError):
        ti.read("csv", out)
