"""`netsim report`: one self-contained HTML page for a run and for a sweep,
opened in a real headless browser (Chromium) that decodes every figure and
screenshots the page."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from netsim import sweep
from tests.conftest import ROOT
from tests.test_cli import run_cli

CONSENSUS = str(ROOT / "scenarios" / "consensus.py")
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser() -> str:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    pytest.skip("no Chromium on this machine (make test installs it where apt-get can)")


def self_contained(page: str) -> None:
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", page)
    assert "<link" not in page
    images = re.findall(r'<img [^>]*src="([^"]{0,30})', page)
    assert images and all(src.startswith("data:image/png;base64,") for src in images)


def open_in_browser(page: Path, tmp: Path) -> tuple[int, np.ndarray]:
    """Figures the browser decoded, and the screenshot's pixels."""
    exe = browser()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run(
        [exe, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    loaded = int(re.search(r'data-figures-loaded="(\d+)"', dom).group(1))  # type: ignore[union-attr]
    shot = tmp / "shot.png"
    subprocess.run(
        [exe, *flags, "--window-size=1280,5000", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    from PIL import Image

    return loaded, np.asarray(Image.open(shot).convert("RGB")).astype(int)


def share_of(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int = 30) -> float:
    return float(np.mean(np.all(np.abs(pixels - np.array(rgb)) < tol, axis=-1)))


@pytest.mark.slow
def test_a_run_report_in_a_real_browser(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    flags = ["--set", "nodes=30", "--set", "failures=0.1", "--set", "devices=mixed"]
    assert run_cli(["run", CONSENSUS, *flags, "--quiet", "--out", str(run)], capsys)[0] == 0
    page = tmp_path / "report.html"
    assert run_cli(["report", str(run), "-o", str(page)], capsys)[0] == 0
    text = page.read_text(encoding="utf-8")
    self_contained(text)
    for heading in (
        "Summary",
        "Key curves",
        "Topology and device classes",
        "Failure timeline",
        "Devices by class",
        "Per device",
        "Provenance",
    ):
        assert f"<h2>{heading}</h2>" in text
    for device_class in ("phone", "laptop", "iot"):
        assert f">{device_class}<" in text  # the class table's rows
    figures = len(re.findall(r"<img ", text))
    loaded, pixels = open_in_browser(page, tmp_path)
    assert loaded == figures >= 4  # curves, topology, failure timeline: all decoded
    assert share_of(pixels, (255, 255, 255)) < 0.97  # something is drawn
    assert share_of(pixels, (214, 39, 40)) > 1e-4  # the timeline's red down periods
    assert share_of(pixels, (31, 119, 180)) > 1e-4  # the curves' blue lines


@pytest.mark.ray
@pytest.mark.slow
def test_a_sweep_report_in_a_real_browser(ray_session: None, tmp_path: Path, capsys) -> None:
    spec = sweep.build_spec(
        CONSENSUS, grid=["nodes=6,10,14", "iterations=20"], zipped=[], seeds=2, grid_file=None
    )
    sweep.run_sweep(spec, tmp_path / "s")
    page = tmp_path / "sweep.html"
    assert run_cli(["report", str(tmp_path / "s"), "-o", str(page)], capsys)[0] == 0
    text = page.read_text(encoding="utf-8")
    self_contained(text)
    assert "<h2>Final metrics against parameters</h2>" in text and "<h2>Points</h2>" in text
    assert text.count("<tr>") >= 6  # a row per point (and the summary rows)
    loaded, pixels = open_in_browser(page, tmp_path)
    assert loaded == len(re.findall(r"<img ", text)) >= 1
    assert share_of(pixels, (31, 119, 180)) > 1e-4  # the error bars' line


def test_report_refuses_what_it_should(tmp_path: Path, capsys) -> None:
    for args, needle in (
        (["report", str(tmp_path), "-o", str(tmp_path / "r.html")], "neither a run nor a sweep"),
        (["report", str(tmp_path), "-o", str(tmp_path / "r.txt")], "expected an .html file name"),
    ):
        code, _, err = run_cli(args, capsys)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r.html").exists()
