"""docs/tutorial.md, executed: its scenario files are written out, every
`netsim` command it shows is run, and its Python block is executed, so the
tutorial cannot drift from the code."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_cli import run_cli

TUTORIAL = ROOT / "docs" / "tutorial.md"
BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)


def blocks() -> list[tuple[str, str]]:
    return BLOCK.findall(TUTORIAL.read_text(encoding="utf-8"))


@pytest.mark.ray  # the sweep it shows runs on Ray
@pytest.mark.slow
def test_the_tutorial_runs_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    files, commands, snippets = [], [], []
    for language, body in blocks():
        first = body.splitlines()[0]
        if language == "python" and first.startswith("# file: "):
            files.append((first.removeprefix("# file: ").strip(), body))
        elif language == "python":
            snippets.append(body)
        elif language == "":
            commands += [line for line in body.splitlines() if line.startswith("netsim ")]
    assert [name for name, _ in files] == ["my_gossip.py", "my_fedavg.py"]
    assert len(commands) >= 7 and snippets
    for name, body in files:
        Path(name).write_text(body, encoding="utf-8")
    for command in commands:
        args = shlex.split(command.split("#")[0])[1:]
        code, _, err = run_cli(args, capsys)
        assert code == 0, f"{command}: {err}"
    for body in snippets:
        exec(compile(body, str(TUTORIAL), "exec"), {})
    assert Path("gossip.png").read_bytes()[:4] == b"\x89PNG"
    assert Path("rings.png").is_file() and Path("runs/gossip-py/summary.json").is_file()
