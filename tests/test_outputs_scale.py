"""Outputs at scale: the graph as two Parquet tables (nodes, links) that give
back exactly what ``topology.graphml`` held; GraphML only for small runs or
when asked; and a run without GraphML still plotted and checked against
theory from what it wrote."""

from __future__ import annotations

import json
import math

import networkx as nx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import netsim
from netsim import outputs
from netsim.graph_tables import attribute_column, graph_from_tables, tables_from_graph
from tests.conftest import build, weight_matrix
from tests.test_cli import run_cli
from tests.test_outputs import CONSENSUS, one_line_refusal
from topologies import slem

FIXED = ["failures.csv", "links.parquet", "metrics.parquet", "nodes.parquet", "summary.json"]


def typed(graph: nx.DiGraph) -> tuple[list, list]:
    """Nodes and arcs with their attributes and the attributes' types."""

    def data(d: dict) -> list:
        return sorted((k, type(v).__name__, v) for k, v in d.items())

    return (
        sorted((k, data(d)) for k, d in graph.nodes(data=True)),
        sorted((u, v, data(d)) for u, v, d in graph.edges(data=True)),
    )


def weights_from_tables(run) -> np.ndarray:  # type: ignore[no-untyped-def]
    """``A`` rebuilt from links.parquet and nodes.parquet alone, with pandas."""
    nodes, links = pd.read_parquet(run / "nodes.parquet"), pd.read_parquet(run / "links.parquet")
    a = np.zeros((len(nodes), len(nodes)))
    a[links["src"], links["dst"]] = links["weight"]
    a[nodes["node"], nodes["node"]] = nodes["self_weight"]
    return a


def test_the_tables_give_back_what_graphml_held(tmp_path) -> None:
    """Diffusion LMS (combination weights on nodes and links): the graph from
    the tables equals the one read from GraphML, ids, attributes and types."""
    result = netsim.run(build("diffusion_lms", nodes=10, iterations=20))
    out = result.write(tmp_path / "r")
    assert sorted(p.name for p in out.iterdir()) == sorted([*FIXED, "topology.graphml"])
    from_graphml = nx.read_graphml(out / "topology.graphml", node_type=int)
    back = netsim.load_run(out)
    assert typed(back.graph) == typed(from_graphml) == typed(result.graph)
    links = pd.read_parquet(out / "links.parquet")
    assert len(links) == result.summary["links"] == from_graphml.number_of_edges()
    assert {"src", "dst", "latency_s", "bandwidth_Bps", "loss", "weight", "bytes"} <= set(links)
    assert links["bytes"].sum() > 0
    nodes = pd.read_parquet(out / "nodes.parquet")
    assert list(nodes["node"]) == list(range(10))
    assert {"mu", "noise_var", "regressor_var", "self_weight", "device_class"} <= set(nodes)
    # what theory needs, from either form
    assert weights_from_tables(out) == pytest.approx(weight_matrix(from_graphml))


def test_a_large_run_writes_no_graphml_yet_plots_and_checks_against_theory(
    tmp_path, capsys, monkeypatch
) -> None:
    monkeypatch.setattr(outputs, "GRAPHML_MAX_LINKS", 10)  # "large": more than 10 links
    out = tmp_path / "big"
    args = ["run", CONSENSUS, "--set", "nodes=25", "--set", "topology=grid"]
    assert run_cli([*args, "--set", "iterations=150", "--quiet", "--out", str(out)], capsys)[0] == 0
    assert sorted(p.name for p in out.iterdir()) == FIXED
    run = netsim.load_run(out)
    assert run.graph.number_of_nodes() == 25 and run.graph.number_of_edges() == 80
    assert weight_matrix(run.graph) == pytest.approx(weights_from_tables(out))
    # the theory check of tests/test_consensus.py, from what the run wrote
    rate = slem(weights_from_tables(out))
    s = run.series("consensus_error")
    t, e = s["step"].to_numpy(), s["value"].to_numpy()
    window = (t >= 45) & (t <= 135) & (e > 1e-12)
    assert np.polyfit(t[window], np.log(e[window]), 1)[0] / np.log(rate) == pytest.approx(
        1.0, abs=0.05
    )
    png = tmp_path / "p.png"
    plot = ["plot", str(out), "--metric", "consensus_error", "--log", "-o", str(png)]
    assert run_cli(plot, capsys)[0] == 0 and png.read_bytes()[:4] == b"\x89PNG"
    code, shown, _ = run_cli(["show", str(out), "--devices"], capsys)
    assert code == 0 and "by device class:" in shown


def test_graphml_when_asked_and_no_stale_graphml_after_force(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(outputs, "GRAPHML_MAX_LINKS", 10)
    out = tmp_path / "r"
    small = ["run", CONSENSUS, "--set", "nodes=8", "--set", "iterations=5", "--quiet"]
    assert run_cli([*small, "--graphml", "--out", str(out)], capsys)[0] == 0
    assert (out / "topology.graphml").is_file()
    first = nx.read_graphml(out / "topology.graphml", node_type=int)
    assert typed(first) == typed(netsim.load_run(out).graph)
    # the same place again, without --graphml: the old run's GraphML goes
    assert run_cli([*small, "--set", "seed=3", "--force", "--out", str(out)], capsys)[0] == 0
    assert sorted(p.name for p in out.iterdir()) == FIXED
    assert json.loads((out / "summary.json").read_text())["seed"] == 3
    assert not list(tmp_path.glob(".*"))  # no temporary directory left
    # the Python API: graphml=None by the threshold, True or False as asked
    result = netsim.run(build("consensus", nodes=8, iterations=5))
    assert not (result.write(tmp_path / "a") / "topology.graphml").exists()
    assert (result.write(tmp_path / "b", graphml=True) / "topology.graphml").exists()
    monkeypatch.setattr(outputs, "GRAPHML_MAX_LINKS", 10**6)
    assert (result.write(tmp_path / "c") / "topology.graphml").exists()
    assert not (result.write(tmp_path / "d", graphml=False) / "topology.graphml").exists()


def test_a_run_written_before_the_tables_reads_from_its_graphml(tmp_path) -> None:
    result = netsim.run(build("diffusion_lms", nodes=8, iterations=10))
    out = result.write(tmp_path / "old", graphml=True)
    (out / "nodes.parquet").unlink()
    (out / "links.parquet").unlink()
    old = netsim.load_run(out)
    assert typed(old.graph) == typed(result.graph)
    assert old.links[["src", "dst", "weight"]].equals(
        result.links[["src", "dst", "weight"]].sort_values(["src", "dst"], ignore_index=True)
    )
    assert netsim.device_table(old)["device_class"].tolist() == ["device"] * 8


@pytest.mark.parametrize("name", ["nodes.parquet", "links.parquet"])
def test_a_damaged_table_is_one_line_naming_it(tmp_path, capsys, name: str) -> None:
    out = netsim.run(build("consensus", nodes=6, iterations=3)).write(tmp_path / "r")
    (out / name).write_text("garbage")
    one_line_refusal(["show", str(out), "--devices"], capsys, f"{name}: not a readable Parquet")
    pd.DataFrame({"x": [1]}).to_parquet(out / name)
    one_line_refusal(["show", str(out), "--devices"], capsys, f"{name}: not a netsim table")


def test_table_names_of_the_run_are_reserved(tmp_path) -> None:
    import dataclasses

    result = netsim.run(build("consensus", nodes=6, iterations=3))
    clash = dataclasses.replace(result, tables={"links": pd.DataFrame({"x": [1]})})
    with pytest.raises(ValueError, match="table name 'links': reserved"):
        clash.write(tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_attribute_columns_keep_one_type_each_and_absent_values() -> None:
    assert attribute_column([1, 2]).type == pa.int64()
    assert attribute_column([1, 2.5]).to_pylist() == [1.0, 2.5]  # as GraphML's numbers
    assert attribute_column([True, None]).to_pylist() == [True, None]
    assert attribute_column([(0.5, 1.0), None]).to_pylist() == ["(0.5, 1.0)", None]
    assert attribute_column(["a", 1]).to_pylist() == ["a", "1"]
    assert attribute_column([np.float32(0.5), math.inf]).type == pa.float64()
    g = nx.DiGraph()
    g.add_node(0, cls="a", rank=3, x=math.nan, on=True)
    g.add_node(1, rank=4, x=1.5)  # no cls, no on
    g.add_edge(0, 1, weight=0.25, hops=2)
    g.add_edge(1, 0, weight=0.75)  # no hops
    nodes, links = tables_from_graph(g)
    back = graph_from_tables(nodes, links)
    assert back.nodes[1] == {"rank": 4, "x": 1.5}  # absent stays absent
    assert math.isnan(back.nodes[0]["x"]) and back.nodes[0]["on"] is True
    assert back.nodes[0]["rank"] == 3 and type(back.nodes[0]["rank"]) is int
    assert back.edges[1, 0] == {"weight": 0.75} and back.edges[0, 1]["hops"] == 2
