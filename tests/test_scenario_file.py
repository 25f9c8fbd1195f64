"""Scenario files: parameters, types, and what scenario() may return."""

from __future__ import annotations

import pytest

from netsim import scenario_file
from netsim.errors import InputError

SOURCE = """
from typing import Literal
import netsim, topologies
from algorithms import AverageConsensus

def scenario(
    nodes: int = 4,
    rate: float = 1.5,
    name: str = "x",
    flag: bool = False,
    mode: Literal["a", "b"] = "a",
    cap: float | None = None,
    seed: int = 0,
) -> netsim.Scenario:
    g = topologies.build("ring", max(nodes, 3))
    return netsim.Scenario(name=name, graph=g, algorithm=AverageConsensus(iterations=2), seed=seed)
"""


@pytest.fixture
def file(tmp_path) -> scenario_file.ScenarioFile:
    path = tmp_path / "s.py"
    path.write_text(SOURCE)
    return scenario_file.load(path)


def test_parameters_and_their_types(file: scenario_file.ScenarioFile) -> None:
    kinds = {name: p.describe() for name, p in file.parameters.items()}
    assert kinds == {
        "nodes": "int",
        "rate": "float",
        "name": "str",
        "flag": "bool",
        "mode": "a|b",
        "cap": "float or none",
        "seed": "int",
    }


def test_assignments_are_typed(file: scenario_file.ScenarioFile) -> None:
    values = file.parse_assignments(
        ["nodes=7", "rate=2e-3", "flag=yes", "mode=b", "cap=none", "name=a=b"]
    )
    assert values == {
        "nodes": 7,
        "rate": 0.002,
        "flag": True,
        "mode": "b",
        "cap": None,
        "name": "a=b",
    }
    assert file.build(values).params["nodes"] == 7


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("nodes=4.5", "--set nodes=4.5: expected an integer"),
        ("rate=fast", "--set rate=fast: expected a number"),
        ("flag=maybe", "--set flag=maybe: expected true or false"),
        ("mode=c", "--set mode=c: expected one of a, b"),
        ("mod=a", "unknown parameter 'mod'; did you mean 'mode'?"),
    ],
)
def test_bad_assignments(file: scenario_file.ScenarioFile, item: str, message: str) -> None:
    with pytest.raises(InputError) as e:
        file.parse_assignments([item])
    assert message in str(e.value)


def test_values_from_python_are_checked(file: scenario_file.ScenarioFile) -> None:
    with pytest.raises(InputError, match="nodes: expected int, got '5'"):
        file.build({"nodes": "5"})
    assert file.build({"rate": 2}).params["rate"] == 2.0  # an int where a float is expected


def test_a_parameter_without_default_is_refused(tmp_path) -> None:
    path = tmp_path / "nodefault.py"
    path.write_text("def scenario(nodes: int):\n    pass\n")
    with pytest.raises(InputError, match="parameter 'nodes' has no default"):
        scenario_file.load(path)


def test_scenario_must_return_a_scenario(tmp_path) -> None:
    path = tmp_path / "wrong.py"
    path.write_text("def scenario(n: int = 1):\n    return 42\n")
    with pytest.raises(InputError, match=r"returned int, expected netsim.Scenario"):
        scenario_file.load(path).build()
