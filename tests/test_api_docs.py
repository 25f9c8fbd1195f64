"""The API reference builds from the docstrings (pdoc, as `make api` runs
it), and documents what a user needs: every public name of netsim, the
algorithms' and configs' arguments, the topology helpers."""

from __future__ import annotations

import re
from pathlib import Path

import netsim
from tests.conftest import ROOT


def test_the_api_reference_builds_and_names_what_users_need(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_api", ROOT / "docs" / "build_api.py")
    assert spec is not None and spec.loader is not None
    build_api = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_api)
    build_api.build(tmp_path)  # as `make api` does

    def text(page: str) -> str:
        return re.sub(r"<[^>]+>", " ", (tmp_path / page).read_text(encoding="utf-8"))

    top = text("netsim.html")
    for name in netsim.__all__:
        assert name in top, name
    fedavg = text("algorithms/federated/fedavg.html")
    for argument in ("learning", "rounds", "participation", "deadline_s", "server", "up", "down"):
        assert argument in fedavg, argument
    learning = text("algorithms/learning.html")
    assert "LearningConfig" in learning and "local_epochs" in learning
    assert "partition" in text("algorithms/datasets.html")
    assert "RandomizedGossip" in text("algorithms.html")
    attributes = text("topologies/attributes.html")
    assert "assign_links" in attributes and "bandwidth_sigma" in attributes
    assert "tier" in attributes
