"""Shared fixtures: paths, scenario builders, and one Ray instance per session."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import netsim
from netsim import scenario_file
from tests.cluster import two_node_cluster  # noqa: F401  (a fixture, for every test module)

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
SHARED_TRACES = ROOT.parent / "shared" / "traces"

# Trained models (split computing) are cached on disk: the tests train into a
# cache of their own, once per session, never reading or filling the user's.
if "NETSIM_CACHE" not in os.environ:
    os.environ["NETSIM_CACHE"] = tempfile.mkdtemp(prefix="netsim-test-cache-")
    atexit.register(shutil.rmtree, os.environ["NETSIM_CACHE"], ignore_errors=True)


def build(name: str, **params: Any) -> netsim.Scenario:
    """The scenario ``scenarios/<name>.py`` with ``params`` overridden."""
    return scenario_file.load(SCENARIOS / f"{name}.py").build(params)


def weight_matrix(graph: Any) -> np.ndarray:
    """``A`` (``A[l, k] = a_lk``) recomputed from a written ``topology.graphml``."""
    n = graph.number_of_nodes()
    a = np.zeros((n, n))
    for u, v, d in graph.edges(data=True):
        a[int(u), int(v)] = d["weight"]
    for k, d in graph.nodes(data=True):
        a[int(k), int(k)] = d["self_weight"]
    return a


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """One local Ray instance shared by every test that needs it (token
    authentication stays on, as Ray configures it)."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()
