"""Where a result came from, recorded in every ``summary.json`` and
``sweep.json``: the scenario file (path and SHA-256 of its content), the
command line, netsim's version and git revision when netsim runs from a git
checkout, and the versions of Python and of the libraries results depend on.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from netsim import __version__

LIBRARIES = ("numpy", "networkx", "simpy", "ray", "torch")


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def scenario_origin(path: str | Path) -> dict[str, str]:
    """The scenario file a run was built from: its path and content hash."""
    return {"scenario_file": str(Path(path).resolve()), "scenario_sha256": file_sha256(path)}


@cache
def git_revision() -> str | None:
    """The commit netsim runs from (``+dirty`` with local changes), if a git checkout."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("+dirty" if dirty else "")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@cache
def environment() -> dict[str, Any]:
    return {
        "netsim_version": __version__,
        "git_revision": git_revision(),
        "python": platform.python_version(),
        **{f"{name}_version": _version(name) for name in LIBRARIES},
    }


def record(origin: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything above, with the command line when netsim's CLI runs."""
    command = sys.argv if Path(sys.argv[0]).name == "netsim" else None
    return {**(origin or {}), "command": command, **environment()}
