"""What a sweep runs: its specification (``sweep.json``), built from the
axes of the command line (``--grid``, ``--zip``, ``--seeds``) and grid files,
every point checked against the scenario's parameters before anything runs;
and read back, refusing a damaged or foreign file."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from netsim import provenance, scenario_file
from netsim.backends import Hosts
from netsim.errors import InputError, first_line
from netsim.provenance import file_sha256

SPEC_FILE = "sweep.json"
MAX_POINTS = 100_000  # a sweep larger than this is surely a mistake (or an endless generator)


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep runs. ``points`` are complete parameter overrides."""

    scenario: str
    points: list[dict[str, Any]]
    axes: dict[str, Any] = field(default_factory=dict)  # how the points were made, for the record
    num_cpus: float = 1.0
    memory: float | None = None  # bytes per point
    backend: str = "inline"  # where each point's devices run
    hosts: Hosts = None
    scenario_sha256: str = ""  # the file's content when the sweep began
    provenance: dict[str, Any] = field(default_factory=dict)  # versions, command line

    def same_work(self, other: SweepSpec) -> bool:
        """The same scenario file (however its path is written) and points."""
        same_file = os.path.realpath(self.scenario) == os.path.realpath(other.scenario)
        return same_file and self.points == other.points


# ------------------------------------------------------------------ specification
def build_spec(
    scenario: str | Path,
    *,
    grid: Sequence[str] = (),
    zipped: Sequence[str] = (),
    seeds: int | None = None,
    grid_file: str | Path | None = None,
    num_cpus: float | None = None,
    memory: float | None = None,
    backend: str = "inline",
    hosts: Hosts = None,
) -> SweepSpec:
    """Expand the axes into points, each checked against the scenario's parameters."""
    file = scenario_file.load(scenario)
    axes: list[list[dict[str, Any]]] = []
    seen: set[str] = set()
    for item in grid:
        name, values = _axis(file, item, "--grid", seen)
        axes.append([{name: v} for v in values])
    if zipped:
        columns = [_axis(file, item, "--zip", seen) for item in zipped]
        lengths = {len(values) for _, values in columns}
        if len(lengths) > 1:
            raise InputError(
                "--zip: every zipped parameter needs the same number of values, "
                f"got {sorted(lengths)}"
            )
        axes.append(
            [
                dict(zip((n for n, _ in columns), row, strict=True))
                for row in zip(*(v for _, v in columns), strict=True)
            ]
        )
    if grid_file is not None:
        axes.append(_grid_file_points(file, Path(grid_file), seen))
    if seeds is not None:
        if "seed" in seen:
            raise InputError("--seeds: the seed is already an axis of the sweep")
        if not isinstance(seeds, int) or seeds < 1:
            raise InputError(f"--seeds: expected an integer >= 1, got {seeds!r}")
        if "seed" not in file.parameters:
            raise InputError(f"{scenario}: has no parameter 'seed' for --seeds")
        axes.append([{"seed": s} for s in range(seeds)])
    if not axes:
        raise InputError("the sweep is empty: give --grid, --zip, --seeds or --grid-file")
    if memory is not None and not (math.isfinite(memory) and memory > 0):
        raise InputError(f"--memory: expected a number of GB > 0, got {memory / 1e9:g}")
    if num_cpus is not None and not (math.isfinite(num_cpus) and num_cpus > 0):
        raise InputError(f"--cpus: expected a number > 0, got {num_cpus:g}")
    count = math.prod(len(a) for a in axes)
    if count > MAX_POINTS:
        raise InputError(f"the sweep has {count:,} points; at most {MAX_POINTS:,} are allowed")
    points = [
        dict(itertools.chain.from_iterable(p.items() for p in combo))
        for combo in itertools.product(*axes)
    ]
    if not points:
        raise InputError("the sweep is empty: an axis has no values")
    resources = getattr(file.module, "RESOURCES", {})
    record = {
        "grid": list(grid),
        "zip": list(zipped),
        "seeds": seeds,
        "grid_file": None if grid_file is None else str(grid_file),
    }
    return SweepSpec(
        scenario=str(scenario),
        scenario_sha256=file_sha256(scenario),
        provenance=provenance.record(),
        points=points,
        axes=record,
        num_cpus=float(num_cpus if num_cpus is not None else resources.get("num_cpus", 1.0)),
        memory=memory if memory is not None else resources.get("memory"),
        backend=backend,
        hosts=hosts,
    )


def _axis(
    file: scenario_file.ScenarioFile, item: str, flag: str, seen: set[str]
) -> tuple[str, list[Any]]:
    name, sep, text = item.partition("=")
    name = name.strip()
    if not sep or not name:
        raise InputError(f"{flag} {item}: expected name=value1,value2,...")
    parameter = file.parameter(name)
    if name in seen:
        raise InputError(f"{flag} {name}: the parameter is given twice")
    seen.add(name)
    texts = text.split(",")
    if not text.strip() or any(not t.strip() for t in texts):
        raise InputError(f"{flag} {item}: empty value; expected name=value1,value2,...")
    values: list[Any] = []
    for t in texts:
        try:
            value = parameter.parse(t.strip())
        except InputError as e:
            raise InputError(
                f"{flag} {name}={text}: {str(e).split(': ', 1)[-1]} (value {t.strip()!r})"
            ) from None
        if any(type(v) is type(value) and v == value for v in values):
            raise InputError(f"{flag} {name}={text}: value {t.strip()!r} given twice")
        values.append(value)
    return name, values


def _grid_file_points(
    file: scenario_file.ScenarioFile, path: Path, seen: set[str]
) -> list[dict[str, Any]]:
    """A Python file defining ``points()`` -> iterable of parameter dicts."""
    if not path.is_file():
        raise InputError(f"--grid-file {path}: file not found")
    if path.suffix != ".py":
        raise InputError(f"--grid-file {path}: expected a Python file (.py) defining points()")
    spec = importlib.util.spec_from_file_location(f"_netsim_grid_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise InputError(f"--grid-file {path}: cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise InputError(f"{path}: importing failed: {type(e).__name__}: {e}") from None
    fn = getattr(module, "points", None)
    if not callable(fn):
        raise InputError(f"{path}: defines no function points()")
    try:
        given = fn()
        iter(given)
    except TypeError:
        raise InputError(
            f"{path}: points() must return an iterable of dicts, got {type(given).__name__}"
        ) from None
    except Exception as e:
        raise InputError(f"{path}: points() raised {type(e).__name__}: {e}") from None
    out = []
    try:
        for i, point in enumerate(itertools.islice(given, MAX_POINTS + 1)):
            out.append(_grid_point(file, path, i, point, seen))
    except InputError:
        raise
    except Exception as e:
        raise InputError(
            f"{path}: points() raised {type(e).__name__} after {len(out)} points: {e}"
        ) from None
    if len(out) > MAX_POINTS:
        raise InputError(f"{path}: points() gave more than {MAX_POINTS:,} points")
    if not out:
        raise InputError(f"{path}: points() gave no point")
    return out


def _grid_point(
    file: scenario_file.ScenarioFile, path: Path, i: int, point: Any, seen: set[str]
) -> dict[str, Any]:
    if not isinstance(point, dict):
        raise InputError(
            f"{path}: point {i}: expected a dict of parameters, got {type(point).__name__}"
        )
    checked = {}
    for name, value in point.items():
        if not isinstance(name, str):
            raise InputError(f"{path}: point {i}: parameter names are strings, got {name!r}")
        try:
            checked[name] = file.parameter(name).check(value)
        except InputError as e:
            raise InputError(f"{path}: point {i}: {e}") from None
        if name in seen:
            raise InputError(f"{path}: point {i}: {name} is also an axis on the command line")
    return checked


def read_spec(out: Path) -> SweepSpec:
    """The sweep's ``sweep.json`` (InputError naming it when unreadable)."""
    path = out / SPEC_FILE
    if not path.is_file():
        raise InputError(f"{out}: no {SPEC_FILE}: not a sweep directory")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(SweepSpec)}
        extra = sorted(set(data) - known) if isinstance(data, dict) else []
        if extra:
            raise ValueError(f"unexpected key {extra[0]!r}")
        return SweepSpec(**data)
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a netsim sweep spec ({first_line(e)})") from None
