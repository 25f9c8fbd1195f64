"""Benchmark: netsim inline against Flower's simulation on the reference
FedAvg workload, each timed as a whole process (start to exit), in the same
run. No assertions.

    python bench/bench_flower.py [--repeats 3] [--flower-python /work/flower-venv/bin/python]
                                 [--baseline /path/to/another/netsim/checkout] [--flower-repeats 0]

The workload: scikit-learn digits, 100 IID clients, 10% of them per round,
an MLP 64-32-10, 10 local epochs of SGD (lr 0.1, batch 16), 20 rounds of
FedAvg. netsim runs ``scenarios/fedavg.py`` through its command line
(``python -m netsim run ... --quiet``, writing its whole output directory),
twice: with the default training engine (torch) and with ``--set
engine=numpy`` (the same model, plain SGD in numpy, no torch imported);
Flower runs ``bench/flower_fedavg.py`` (its ``run_simulation`` on Ray) with a
Python that has Flower installed; Flower is not a netsim dependency, and is
skipped, saying so, when that Python is missing (or with
``--flower-repeats 0``). Both sides use the same data
split recipe (stratified 20% test, the rest in 100 equal IID shards), model,
optimizer and evaluation of the global model after every round.

netsim's time is the best of ``--repeats`` runs of each engine (interleaved);
Flower's of ``--flower-repeats``; each engine's ratio to Flower is printed.
Also printed: the floor every torch program pays here (Python start-up, and
``import torch``). Before timing, netsim's sources are
byte-compiled once (``compileall``), as installing a package does, so that
an environment with ``PYTHONDONTWRITEBYTECODE`` does not make every netsim
process recompile them while Flower's installed package is compiled.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FLOWER = Path("/work/flower-venv/bin/python")
WORKLOAD = {
    "clients": 100,
    "participation": 0.1,
    "rounds": 20,
    "model": "mlp",
    "local_epochs": 10,
    "batch_size": 16,
    "lr": 0.1,
    "optimizer": "sgd",
    "partition": "iid",
    "dataset": "digits",
}


@dataclass(frozen=True)
class Timing:
    """A subprocess's wall time, start to exit, and the CPU time (user +
    system) of it and the children it waited for: on a busy machine the
    CPU time is the steadier figure."""

    wall: float
    cpu: float


def timed(
    cmd: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT
) -> tuple[Timing, str]:
    """Timing of ``cmd`` as a subprocess, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{cmd[0]} ... failed ({done.returncode}):\n{done.stderr[-3000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return Timing(wall, cpu), done.stdout


def run_netsim(out: Path, root: Path = ROOT, engine: str | None = None) -> tuple[Timing, float]:
    """One whole-process netsim run of the checkout at ``root`` (its
    ``netsim`` command; an older checkout without ``python -m netsim`` runs
    ``netsim.cli.main``), with the training ``engine`` (``None``: the
    scenario's default): its timing and final test accuracy."""
    workload = WORKLOAD if engine is None else {**WORKLOAD, "engine": engine}
    sets = [a for k, v in workload.items() for a in ("--set", f"{k}={v}")]
    entry = ["-m", "netsim"]
    if not (root / "netsim" / "__main__.py").exists():
        entry = ["-c", "import sys; from netsim.cli import main; sys.exit(main())"]
    cmd = [sys.executable, *entry, "run", "scenarios/fedavg.py", *sets]
    env = dict(os.environ, PYTHONPATH=str(root))
    timing, _ = timed([*cmd, "--out", str(out), "--quiet"], env, root)
    summary = json.loads((out / "summary.json").read_text())
    return timing, float(summary["final"]["accuracy"])


def run_flower(python: Path, cpus_per_client: float) -> tuple[Timing, dict[str, Any]]:
    """One whole-process Flower run: its timing and its ``RESULT`` line."""
    env = dict(os.environ, FLWR_TELEMETRY_ENABLED="0", PYTHONPATH=str(ROOT / "bench"))
    cmd = [str(python), "bench/flower_fedavg.py", "--cpus-per-client", str(cpus_per_client)]
    timing, stdout = timed(cmd, env)
    lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        sys.exit(f"bench/flower_fedavg.py printed no RESULT line:\n{stdout[-3000:]}")
    return timing, json.loads(lines[-1].removeprefix("RESULT "))


def best(timings: list[Timing]) -> Timing:
    return Timing(min(t.wall for t in timings), min(t.cpu for t in timings))


def line(label: str, t: Timing, rest: str = "") -> str:
    return f"  {label:36s} {t.wall:7.2f} s wall {t.cpu:7.2f} s CPU   {rest}".rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="netsim runs (best is kept)")
    parser.add_argument("--flower-repeats", type=int, default=1)
    parser.add_argument("--flower-python", type=Path, default=DEFAULT_FLOWER)
    parser.add_argument("--cpus-per-client", type=float, default=2.0, help="Flower's Ray share")
    parser.add_argument(
        "--baseline", type=Path, help="another netsim checkout to time the same way (before/after)"
    )
    args = parser.parse_args()
    for root in filter(None, (ROOT, args.baseline)):
        for package in ("netsim", "actors", "algorithms", "topologies"):
            compileall.compile_dir(root / package, quiet=1)
    floor = {
        "python start-up": best([timed([sys.executable, "-c", "pass"])[0] for _ in range(3)]),
        "python + import torch": best(
            [timed([sys.executable, "-c", "import torch"])[0] for _ in range(3)]
        ),
    }
    engines: dict[str, list[Timing]] = {"torch": [], "numpy": []}
    accuracy: dict[str, float] = {}
    before, base_accuracy = [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):  # interleaved, so all see the same load
            for engine, timings in engines.items():
                timing, accuracy[engine] = run_netsim(Path(tmp) / f"{engine}{i}", engine=engine)
                timings.append(timing)
            if args.baseline:
                timing, base_accuracy = run_netsim(Path(tmp) / f"base{i}", args.baseline)
                before.append(timing)
    print(
        "FedAvg on digits: 100 IID clients, 10% per round, MLP 64-32-10, "
        "10 local epochs of SGD lr 0.1 batch 16, 20 rounds; whole processes, best of the runs"
    )
    for name, timing in floor.items():
        print(line(name, timing))
    for engine, timings in engines.items():
        walls = ", ".join(f"{t.wall:.2f}" for t in timings)
        label = f"netsim inline, engine {engine} ({args.repeats} runs)"
        rest = f"accuracy {accuracy[engine]:.4f}   walls: {walls}"
        print(line(label, best(timings), rest))
    if args.baseline:
        walls = ", ".join(f"{t.wall:.2f}" for t in before)
        label = f"baseline {args.baseline.name} ({args.repeats} runs)"
        print(line(label, best(before), f"accuracy {base_accuracy:.4f}   walls: {walls}"))
    if args.flower_repeats < 1:
        print("  Flower: skipped (--flower-repeats 0)")
        return
    if not args.flower_python.exists():
        print(
            f"  Flower: skipped, {args.flower_python} not found (install it in its own venv: "
            "pip install 'torch>=2.2,<2.14' 'flwr[simulation]' scikit-learn)"
        )
        return
    flower = [
        run_flower(args.flower_python, args.cpus_per_client) for _ in range(args.flower_repeats)
    ]
    theirs = best([t for t, _ in flower])
    accuracies = [float(r["accuracy"]) for _, r in flower]  # Flower's sampling is not seeded
    theirs_accuracy = sum(accuracies) / len(accuracies)
    label = f"Flower {flower[0][1]['flwr']} simulation ({args.flower_repeats} runs)"
    walls = ", ".join(f"{t.wall:.2f}" for t, _ in flower)
    each = ", ".join(f"{a:.4f}" for a in accuracies)
    print(line(label, theirs, f"accuracy {theirs_accuracy:.4f} (mean of {each})   walls: {walls}"))
    for engine, timings in engines.items():
        ours = best(timings)
        gap = 100 * abs(accuracy[engine] - theirs_accuracy)
        print(
            f"  netsim ({engine}) / Flower, wall: {ours.wall / theirs.wall:.3f} "
            f"(Flower takes {theirs.wall / ours.wall:.1f}x); accuracy gap {gap:.1f} points"
        )


if __name__ == "__main__":
    main()
