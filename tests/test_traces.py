"""The netsim failure trace format v1: exact round trips and clear errors."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netsim.errors import InputError
from netsim.traces import FailureEvent, format_trace, parse_trace, read_trace

HEADER = "# netsim failure trace v1\ntime,target,event,value\n"

events = st.builds(
    FailureEvent,
    time=st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False),
    target=st.one_of(
        st.integers(0, 999).map(lambda i: f"node:{i}"),
        st.tuples(st.integers(0, 99), st.integers(100, 199)).map(lambda p: f"link:{p[0]}-{p[1]}"),
    ),
    event=st.sampled_from(["down", "up"]),
)


@given(st.lists(events, min_size=1))
def test_round_trip_is_exact(evs: list[FailureEvent]) -> None:
    evs = sorted(evs, key=lambda e: e.time)
    assert parse_trace(format_trace(evs)) == evs  # times compare bit for bit


def test_parameter_events_and_comments() -> None:
    rows = "1.5,link:3-7,bandwidth,1.5e6\n2,node:1,compute,1e9\n\n3,link:3-7,latency,0\n"
    text = HEADER + "# a comment\n" + rows
    evs = parse_trace(text)
    assert [(e.time, e.event, e.value) for e in evs] == [
        (1.5, "bandwidth", 1.5e6),
        (2.0, "compute", 1e9),
        (3.0, "latency", 0.0),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("abc,node:1,down,\n", "t.csv:3: time: expected a number, got 'abc'"),
        ("1,node:1,down\n", "t.csv:3: expected 4 fields"),
        ("1,nod:1,down,\n", "t.csv:3: target: expected node:<id> or link:<u>-<v>"),
        (
            "1,node:1,explode,\n",
            "t.csv:3: event: expected one of down, up, compute for a node, got 'explode'",
        ),
        ("1,link:1-2,compute,5\n", "t.csv:3: event: expected one of down, up, bandwidth, latency"),
        ("1,node:1,down,3\n", "t.csv:3: value: a down event takes no value"),
        ("1,link:1-2,bandwidth,\n", "t.csv:3: value: a bandwidth event needs a finite number > 0"),
        (
            "1,link:1-2,bandwidth,-4\n",
            "t.csv:3: value: a bandwidth event needs a finite number > 0",
        ),
        ("1,node:1,compute,x\n", "t.csv:3: value: expected a number, got 'x'"),
        ("-1,node:1,down,\n", "t.csv:3: time: expected a finite number >= 0"),
        ("nan,node:1,down,\n", "t.csv:3: time: expected a finite number >= 0"),
        ("5,node:1,down,\n4,node:1,up,\n", "t.csv:4: time: 4.0 goes backwards for node:1"),
        ("1,link:2-2,down,\n", "t.csv:3: target: a link joins two different nodes"),
    ],
)
def test_bad_rows_name_line_and_field(tmp_path, body: str, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(HEADER + body)
    with pytest.raises(InputError) as e:
        read_trace(path)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_unreadable_traces(tmp_path) -> None:
    with pytest.raises(InputError, match="trace file not found"):
        read_trace(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="empty trace"):
        read_trace(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text(HEADER)
    assert read_trace(header_only) == []  # no failures: what a failure-free run records
    pickled = tmp_path / "trace.pkl"
    pickled.write_bytes(pickle.dumps([(1.0, "node:1", "down")]))
    with pytest.raises(InputError, match="binary content"):
        read_trace(pickled)
    wrong_header = tmp_path / "w.csv"
    wrong_header.write_text("t,who,what\n1,node:1,down\n")
    with pytest.raises(InputError, match=r"w\.csv:1: expected the header"):
        read_trace(wrong_header)
    v2 = tmp_path / "v2.csv"
    v2.write_text("# netsim failure trace v2\ntime,target,event,value\n")
    with pytest.raises(InputError, match="v2 is not supported"):
        read_trace(v2)


def test_events_are_sorted_by_time_stably() -> None:
    evs = parse_trace(HEADER + "5,node:1,down,\n1,node:2,down,\n5,node:3,down,\n")
    assert [e.target for e in evs] == ["node:2", "node:1", "node:3"]
