"""ruff and mypy stay clean (the packages are typed: py.typed)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

BIN = Path(sys.executable).parent


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_tool_is_clean(command: list[str]) -> None:
    tool = BIN / command[0]
    if not tool.exists() and shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} is not installed")
    exe = str(tool) if tool.exists() else command[0]
    done = subprocess.run([exe, *command[1:]], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    ("package", "never"),
    [("netsim", {"actors", "algorithms"}), ("algorithms", {"actors"}), ("topologies", {"actors"})],
)
def test_imports_run_one_way(package: str, never: set[str]) -> None:
    """scenarios -> algorithms, topologies -> netsim <- actors (design.md). The
    command line (netsim/cli.py: `netsim list` shows the algorithms) is where
    the packages meet, and may import them all."""
    for path in sorted((ROOT / package).rglob("*.py")):
        if path == ROOT / "netsim" / "cli.py":
            continue
        wrong = _imported_packages(path) & never
        assert not wrong, f"{path.relative_to(ROOT)} imports {', '.join(sorted(wrong))}"


def test_no_module_of_algorithms_exceeds_400_lines() -> None:
    for path in sorted((ROOT / "algorithms").rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 400, f"{path.relative_to(ROOT)}: {lines} lines"
