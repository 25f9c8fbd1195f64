"""Sweeps: many runs of one scenario over a grid of parameters, as Ray tasks.

What a sweep runs (its points, from ``--grid``, ``--zip``, ``--seeds`` and
grid files) is :mod:`netsim.sweep_spec`. A sweep directory holds::

    sweep.json        the specification: scenario, axes, and every point's parameters
    sweep.parquet     one row per point: parameters, seed, status, error,
                      summary metrics, wall time, the Ray node that ran it
    points/00003/     each point's usual output directory (summary.json, ...)
    points/00003.json where and how the point ran (or why it failed)

A point is **done** when its output directory holds ``summary.json`` (written
last, atomically). ``--resume`` runs only the points that are not done. The
driver writes every file, so workers need no shared storage for results;
they do need the scenario file (same path, shared storage, or Ray's
``working_dir``; see docs/sweeps.md). Points are seeded, so a retried or
resumed point gives exactly what it would have given the first time.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from netsim import scenario_file
from netsim.backends import Hosts
from netsim.errors import InputError, first_line
from netsim.outputs import check_writable, write_atomic
from netsim.results import Result, load_run, render_run, write_rendered
from netsim.sweep_spec import SPEC_FILE, SweepSpec, build_spec, read_spec

__all__ = ["SPEC_FILE", "Sweep", "SweepSpec", "build_spec", "load_sweep", "read_spec", "run_sweep"]

TABLE_FILE, POINTS_DIR = "sweep.parquet", "points"


# ------------------------------------------------------------------ the sweep directory
def point_dir(out: Path, i: int) -> Path:
    return out / POINTS_DIR / f"{i:05d}"


def is_done(out: Path, i: int) -> bool:
    return (point_dir(out, i) / "summary.json").is_file()


def prepare_dir(
    out: Path, spec: SweepSpec, resume: bool, create: bool = True, allow_changed: bool = False
) -> None:
    """Create ``out`` for ``spec`` (only check, unless ``create``), or check
    that it holds this same sweep, of the same scenario file content unless
    ``allow_changed``."""
    spec_path = out / SPEC_FILE
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory")
    if spec_path.is_file():
        old = read_spec(out)
        if not old.same_work(spec):
            raise InputError(
                f"--out {out}: holds a different sweep "
                f"({len(old.points)} points of {old.scenario}); "
                "choose a new directory"
            )
        if not resume:
            raise InputError(
                f"--out {out}: already holds this sweep; "
                "add --resume to finish it, or choose a new directory"
            )
        if (
            old.scenario_sha256
            and old.scenario_sha256 != spec.scenario_sha256
            and not allow_changed
        ):
            raise InputError(
                f"--resume: {spec.scenario} changed since the sweep began (its points would mix "
                "two versions); restore it, choose a new directory, or pass --allow-changed"
            )
        return
    if out.is_dir() and any(out.iterdir()):
        raise InputError(f"--out {out}: directory is not empty and holds no sweep; choose another")
    check_writable(out, "--out")
    if not create:
        return
    (out / POINTS_DIR).mkdir(parents=True, exist_ok=True)
    write_atomic(spec_path, json.dumps(asdict(spec), indent=2, default=str) + "\n")


# ------------------------------------------------------------------ running a point (on a worker)
def run_point(
    scenario_path: str, fallback_path: str, params: dict[str, Any], backend: str, hosts: Hosts
) -> dict[str, Any]:
    """Run one point where Ray put it; return its output files (formatted
    here, so that the driver only stores them) and where it ran."""
    from netsim.runner import run

    path = scenario_path if Path(scenario_path).is_file() else fallback_path
    if not Path(path).is_file():
        raise InputError(
            f"scenario file {scenario_path} not found on {socket.gethostname()}: "
            "share it or pass --working-dir"
        )
    result = run(scenario_file.load(path).build(params), backend=backend, hosts=hosts)
    files = render_run(result)
    return {"files": files, "node": _node_id(), "host": socket.gethostname()}


def _node_id() -> str | None:
    try:
        import ray

        return str(ray.get_runtime_context().get_node_id())
    except Exception:  # not on Ray
        return None


# ------------------------------------------------------------------ running the sweep (driver)
@dataclass
class Progress:
    total: int
    done: int = 0
    failed: int = 0
    running: int = 0
    skipped: int = 0  # done before a resume


class SweepInterrupted(Exception):
    def __init__(self, progress: Progress) -> None:
        super().__init__("interrupted")
        self.progress = progress


def run_sweep(
    spec: SweepSpec,
    out: Path,
    *,
    resume: bool = False,
    allow_changed: bool = False,
    address: str | None = None,
    working_dir: str | None = None,
    max_in_flight: int | None = None,
    retries: int = 2,
    on_update: Callable[[Progress], None] | None = None,
) -> Progress:
    """Run the points of ``spec`` that are not done, writing into ``out``."""
    import ray

    from netsim.ray_cluster import connect

    prepare_dir(out, spec, resume, create=False, allow_changed=allow_changed)  # before Ray
    todo = [i for i in range(len(spec.points)) if not is_done(out, i)]
    progress = Progress(total=len(spec.points), skipped=len(spec.points) - len(todo))
    started = prepared = False
    try:
        if todo:
            started = connect(
                address, runtime_env={"working_dir": working_dir} if working_dir else None
            )
        prepare_dir(out, spec, resume, allow_changed=allow_changed)
        prepared = True
        if todo:
            _execute(spec, out, todo, progress, max_in_flight, retries, on_update)
    except KeyboardInterrupt:
        raise SweepInterrupted(progress) from None
    finally:
        if prepared:
            write_table(out, spec)
        if started:
            ray.shutdown()
    return progress


def _execute(
    spec: SweepSpec,
    out: Path,
    todo: list[int],
    progress: Progress,
    max_in_flight: int | None,
    retries: int,
    on_update: Callable[[Progress], None] | None,
) -> None:
    import ray

    options: dict[str, Any] = {
        "num_cpus": spec.num_cpus,
        "max_retries": retries,
        "retry_exceptions": False,
    }
    if spec.memory:
        options["memory"] = int(spec.memory)
    task = ray.remote(run_point).options(**options)
    limit = max_in_flight or max(
        1, int(2 * ray.cluster_resources().get("CPU", 1) / max(spec.num_cpus, 1e-9))
    )
    absolute = str(Path(spec.scenario).resolve())
    queue: deque[int] = deque(todo)
    pending: dict[Any, int] = {}
    with _ctrl_c_as_flag() as interrupted:
        while queue or pending:
            while queue and len(pending) < limit:
                i = queue.popleft()
                pending[
                    task.remote(spec.scenario, absolute, spec.points[i], spec.backend, spec.hosts)
                ] = i
            progress.running = len(pending)
            if on_update:
                on_update(progress)
            ready: list[Any] = []
            while not ready and not interrupted():
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
            if interrupted():
                # points in flight are lost with the driver's shutdown (Ray ends
                # a dead owner's tasks); no cancel, which races with completion
                raise KeyboardInterrupt
            for ref in ready:
                i = pending.pop(ref)
                _collect(out, i, ref, progress)
    progress.running = 0
    if on_update:
        on_update(progress)


@contextlib.contextmanager
def _ctrl_c_as_flag() -> Iterator[Callable[[], bool]]:
    """Turn the first Ctrl-C into a flag the sweep loop reads between waits.

    A KeyboardInterrupt raised inside Ray's own calls can leave its core worker
    in a state it aborts on; a second Ctrl-C still interrupts at once.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # started to ignore it
    ):
        yield lambda: False
        return
    seen = threading.Event()

    def on_sigint(signum: int, frame: Any) -> None:
        seen.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield seen.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


def _collect(out: Path, i: int, ref: Any, progress: Progress) -> None:
    import ray

    meta: dict[str, Any] = {"point": i}
    try:
        got = ray.get(ref)
    except ray.exceptions.RayTaskError as e:  # the run itself raised
        cause = e.cause if getattr(e, "cause", None) is not None else e
        meta |= {"status": "failed", "error": f"{type(cause).__name__}: {cause}".splitlines()[0]}
    except ray.exceptions.RayError as e:  # the worker died, beyond the retries
        meta |= {
            "status": "failed",
            "error": f"{type(e).__name__}: {first_line(e)}",
        }
    else:
        write_rendered(point_dir(out, i), got["files"])  # a point not recorded as done
        meta |= {"status": "done", "node": got["node"], "host": got["host"]}
    write_atomic(out / POINTS_DIR / f"{i:05d}.json", json.dumps(meta) + "\n")
    if meta["status"] == "done":
        progress.done += 1
    else:
        progress.failed += 1


# ------------------------------------------------------------------ the table
def write_table(out: Path, spec: SweepSpec) -> pd.DataFrame:
    """One row per point, rebuilt from the point directories; written atomically."""
    rows = [_row(out, i, p) for i, p in enumerate(spec.points)]
    table = pd.DataFrame(rows)
    tmp = out / f".{TABLE_FILE}.{os.getpid()}.tmp"
    table.to_parquet(tmp, index=False)
    os.replace(tmp, out / TABLE_FILE)
    return table


def _row(out: Path, i: int, params: dict[str, Any]) -> dict[str, Any]:
    meta_path = out / POINTS_DIR / f"{i:05d}.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    row: dict[str, Any] = {"point": i, **params}
    if is_done(out, i):
        s = json.loads((point_dir(out, i) / "summary.json").read_text())
        row |= {"status": "done", "error": None}
        row |= {f"final_{k}": v for k, v in s["final"].items()}
        row |= {
            "sim_time": s["sim_time"],
            "wall_time_s": s["wall_time_s"],
            "events": s["events"],
            **{f"messages_{k}": v for k, v in s["messages"].items()},
            "bytes_sent": s["bytes_sent"],
            "energy_J": s["energy_J"],
        }
    else:
        row |= {"status": meta.get("status", "pending"), "error": meta.get("error")}
    row |= {
        "ray_node": meta.get("node"),
        "host": meta.get("host"),
        "run_dir": str(point_dir(out, i).relative_to(out)),
    }
    return row


def summarize(out: Path) -> pd.DataFrame:
    """Mean and standard deviation over seeds of each done point's numbers,
    grouped by the other parameters."""
    loaded = load_sweep(out)
    spec, table = loaded.spec, loaded.table
    params = sorted({k for p in spec.points for k in p} - {"seed"})
    done = table[table["status"] == "done"]
    numbers = [c for c in done.columns if c.startswith("final_")]
    numbers += ["sim_time", "bytes_sent", "energy_J", "wall_time_s"]
    if done.empty:
        raise InputError(f"{out}: no point is done yet")
    grouped = done.groupby(params, dropna=False) if params else done.groupby(lambda _: "all")
    summary = grouped[numbers].agg(["mean", "std"])
    summary.columns = [f"{c}_{s}" for c, s in summary.columns]
    summary.insert(0, "runs", grouped.size())
    return summary.reset_index()


@dataclass(frozen=True)
class Sweep:
    """A sweep read back: its specification and its table (one row per point)."""

    path: Path
    spec: SweepSpec
    table: pd.DataFrame

    def run(self, point: int) -> Result:
        """The run of ``point`` (a done one)."""
        return load_run(self.path / point_dir(Path(), point))


def load_sweep(path: str | Path) -> Sweep:
    """A sweep directory read back (InputError naming a damaged file)."""
    out = Path(path)
    spec = read_spec(out)
    table_path = out / TABLE_FILE
    if not table_path.is_file():
        raise InputError(f"{out}: no {TABLE_FILE}: not a sweep directory")
    try:
        table = pd.read_parquet(table_path)
    except Exception as e:  # pyarrow raises several kinds for a damaged file
        raise InputError(f"{table_path}: not a readable Parquet file ({first_line(e)})") from None
    return Sweep(out, spec, table)


def eta_seconds(progress: Progress, elapsed: float) -> float:
    """Time left, from the pace of the points finished so far."""
    finished = progress.done + progress.failed
    remaining = progress.total - progress.skipped - finished
    return math.inf if finished == 0 else elapsed / finished * remaining
