"""The ``netsim`` command line.

Bad input is reported as one line on stderr with exit status 2 and nothing
written; a run that fails for another reason (a Ray host died) exits 1.
``--traceback`` shows Python tracebacks for debugging.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from netsim import __version__
from netsim.errors import InputError, SimulationError
from netsim.outputs import (
    Terminated,
    check_writable,
    refuse_existing,
    terminated,
    write_atomic,
)
from netsim.summary_table import format_summary

EPILOG_RUN = """\
examples:
  netsim run scenarios/diffusion_lms.py --set nodes=50 --set mu=0.02 --out runs/d1
  netsim run scenarios/consensus.py --backend ray --hosts 2 --out runs/c1
  netsim run scenarios/consensus.py --trace runs/c1/failures.csv   # replay its failures
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="netsim",
        description="Simulate decentralized learning networks on a virtual clock.",
    )
    parser.add_argument("--version", action="version", version=f"netsim {__version__}")
    parser.add_argument(
        "--traceback", action="store_true", help="show Python tracebacks on errors (debugging)"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser(
        "run",
        help="run one scenario",
        description="Run a scenario file and write its output directory "
        "(summary.json, metrics.parquet, failures.csv, topology.graphml).",
        epilog=EPILOG_RUN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("scenario", type=Path, help="scenario file (defines scenario(**params))")
    run.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a scenario parameter (repeatable); see `netsim list`",
    )
    run.add_argument(
        "--backend",
        choices=("inline", "ray"),
        default=None,
        help="where device actors run: inline (this process, default) or ray",
    )
    run.add_argument(
        "--address",
        default=None,
        help="Ray cluster to join (implies --backend ray; default: RAY_ADDRESS or a new local one)",
    )
    run.add_argument(
        "--hosts",
        type=_hosts,
        default=None,
        metavar="K|per-device",
        help="spread devices over K hosts, or give each device its own (per-device); "
        "default: inline, one; ray, one per CPU of the cluster",
    )
    run.add_argument(
        "--trace",
        type=Path,
        default=None,
        help="replay this failure trace instead of the scenario's own failures",
    )
    run.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory (default: runs/<scenario>-<date>-<time>-<random>)",
    )
    run.add_argument(
        "--force", action="store_true", help="replace the run already in --out (refused otherwise)"
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar, no summary table")

    lst = sub.add_parser(
        "list",
        help="list algorithms, topologies and scenario parameters",
        description="List what netsim offers, and the parameters of scenario files "
        "(by default those in ./scenarios).",
    )
    lst.add_argument("scenarios", nargs="*", type=Path, help="scenario files to describe")

    sweep = sub.add_parser(
        "sweep",
        help="run a scenario over a grid of parameters, as Ray tasks",
        description="Run a scenario over the Cartesian product of its axes (--grid, one "
        "--zip group, --seeds, a --grid-file), each point a Ray task, on a local Ray "
        "instance or a cluster. Writes sweep.json, sweep.parquet and each point's output "
        "directory; --resume runs only what is missing. See docs/sweeps.md.",
        epilog="examples:\n"
        "  netsim sweep scenarios/diffusion_lms.py --grid topology=ring,grid --grid nodes=16,64 "
        "--seeds 5 --out sweeps/s1\n"
        "  netsim sweep scenarios/diffusion_lms.py ... --out sweeps/s1 --resume\n"
        "  RAY_ADDRESS=auto netsim sweep ...",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("scenario", type=Path)
    sweep.add_argument(
        "--grid", action="append", default=[], metavar="NAME=V1,V2", help="an axis (repeatable)"
    )
    sweep.add_argument(
        "--zip",
        action="append",
        default=[],
        metavar="NAME=V1,V2",
        help="parameters varied together, value by value (one axis)",
    )
    sweep.add_argument("--seeds", type=_positive_int, help="seeds 0..N-1 as an axis")
    sweep.add_argument("--grid-file", type=Path, help="a Python file defining points()")
    sweep.add_argument("--address", help="Ray cluster to join (default: RAY_ADDRESS or local)")
    sweep.add_argument(
        "--working-dir", help="directory shipped to every worker (Ray runtime environment)"
    )
    sweep.add_argument(
        "--out", type=Path, help="sweep directory (default: sweeps/<scenario>-<time>)"
    )
    sweep.add_argument("--resume", action="store_true", help="finish the sweep in --out")
    sweep.add_argument(
        "--allow-changed",
        action="store_true",
        help="with --resume: go on although the scenario file changed since the sweep began",
    )
    sweep.add_argument("--cpus", type=float, help="CPUs per point (default: the scenario's, or 1)")
    sweep.add_argument("--memory", type=float, help="memory per point, GB")
    sweep.add_argument("--max-in-flight", type=_positive_int, help="points submitted at once")
    sweep.add_argument(
        "--retries", type=int, default=2, help="retries of a point whose worker died (default 2)"
    )
    sweep.add_argument(
        "--point-backend",
        choices=("inline", "ray"),
        default="inline",
        help="where each point's devices run (ray: spread a big run over the cluster)",
    )
    sweep.add_argument(
        "--point-hosts",
        type=_hosts,
        metavar="K|per-device",
        help="hosts per point (ray backend; default: one per CPU of the cluster)",
    )
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    summ = sub.add_parser("sweep-summary", help="mean and spread over seeds of a sweep's points")
    summ.add_argument("sweep_dir", type=Path)

    show = sub.add_parser(
        "show",
        help="print a finished run's summary again",
        description="Print the summary table of a run directory, as `netsim run` did; "
        "with --devices, each device's totals (compute, time, bytes, energy), and by class.",
    )
    show.add_argument("run", type=Path, help="a run output directory")
    show.add_argument("--devices", action="store_true", help="also the per-device tables")

    rep = sub.add_parser(
        "report",
        help="one self-contained HTML page of a run or a sweep",
        description="Write one HTML page (figures inside, nothing beside it) with a run's "
        "summary, key curves, topology and device classes, failure timeline and per-device "
        "tables; or a sweep's table and final metrics against its parameters.",
    )
    rep.add_argument("path", type=Path, help="a run or sweep output directory")
    rep.add_argument("-o", "--output", type=Path, required=True, help="the .html file to write")
    rep.add_argument("--force", action="store_true", help="replace the page if it exists")

    compare = sub.add_parser(
        "compare",
        help="final metrics of several runs, or of a sweep's points, side by side",
        description="One row per run (or per point of a sweep directory): the parameters "
        "that differ and every final metric.",
    )
    compare.add_argument("runs", nargs="+", type=Path, help="run directories, or one sweep")

    plot = sub.add_parser(
        "plot",
        help="plot a metric of one or more runs or sweeps (PNG)",
        description="Plot a metric (network-wide, or of one node) of runs, or of a sweep's "
        "points, against iteration and against simulated time; or its last value against a "
        "sweep parameter.",
        epilog="examples:\n"
        "  netsim plot runs/apsm runs/atc runs/rza --metric msd_db -o msd.png\n"
        "  netsim plot sweeps/s1 --metric consensus_error --log --mean -o err.png\n"
        "  netsim plot sweeps/s1 --metric consensus_error --against nodes -o by_size.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plot.add_argument("runs", nargs="+", type=Path, help="run or sweep output directories")
    plot.add_argument("--metric", required=True, help="e.g. msd_db, consensus_error")
    plot.add_argument("--node", type=int, default=-1, help="a node's own metric (default: network)")
    plot.add_argument("--log", action="store_true", help="logarithmic y axis")
    plot.add_argument(
        "--mean",
        action="store_true",
        help="one line per setting: the mean over seeds, with a ±1 std band",
    )
    plot.add_argument(
        "--against", metavar="PARAM", help="the metric's last value against this parameter"
    )
    plot.add_argument("-o", "--output", type=Path, default=Path("plot.png"), help="PNG to write")
    plot.add_argument("--force", action="store_true", help="replace the PNG if it exists")

    trace = sub.add_parser(
        "trace",
        help="import, inspect and plot failure traces",
        description="Failure traces in the netsim format (docs/traces.md).",
    )
    tsub = trace.add_subparsers(dest="trace_command", required=True, parser_class=_Parser)
    imp = tsub.add_parser(
        "import",
        help="convert a recorded trace to the netsim format",
        description="Convert a recorded availability trace into a netsim failure trace. "
        "Formats: fta (Failure Trace Archive event_trace tables), windows (availability "
        "windows per device, JSON or CSV device,start,end), sessions (per device: start, "
        "first state, alternating durations). See docs/traces.md.",
        epilog="example:\n  netsim trace import --format fta lanl.tab lanl.csv "
        "--start 2004-01-01 --duration 30d --scale 3600 --nodes 100",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.add_argument("--format", required=True, choices=("fta", "windows", "sessions"))
    imp.add_argument("input", type=Path, help="the recorded trace")
    imp.add_argument("output", type=Path, help="the netsim trace to write (.csv)")
    imp.add_argument("--force", action="store_true", help="replace the output if it exists")
    imp.add_argument(
        "--start", help="window start, trace seconds or an ISO date (default: trace start)"
    )
    imp.add_argument(
        "--duration", help="window length, seconds or with a unit: 30d, 12h (default: to the end)"
    )
    imp.add_argument(
        "--scale", type=float, default=1.0, help="trace seconds per simulated second (default 1)"
    )
    imp.add_argument("--nodes", type=_positive_int, help="map this many devices onto nodes 0..N-1")
    imp.add_argument(
        "--sample", type=int, metavar="SEED", help="a random sample of devices instead of the first"
    )
    imp.add_argument("--map", type=Path, help="explicit map file: trace_id,node per line")
    imp.add_argument(
        "--gap",
        choices=("down", "unknown"),
        default="down",
        help="a time with no record means down (default) or unknown (keep the last state)",
    )
    info = tsub.add_parser("info", help="nodes, span, availability, failures, MTBF, MTTR")
    info.add_argument("trace", type=Path)
    info.add_argument("--until", type=float, help="end of the span (default: the last event)")
    plot = tsub.add_parser("plot", help="availability chart (PNG)")
    plot.add_argument("trace", type=Path)
    plot.add_argument("-o", "--output", type=Path, help="PNG to write (default: TRACE.png)")
    plot.add_argument("--force", action="store_true", help="replace the PNG if it exists")
    plot.add_argument("--until", type=float, help="end of the chart (default: the last event)")
    plot.add_argument(
        "--max-nodes", type=_positive_int, default=64, help="nodes drawn (default 64)"
    )
    return parser


def _hosts(text: str) -> int | str:
    if text == "per-device":
        return text
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= 1 or per-device, got {text!r}"
        ) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "run": cmd_run,
        "list": cmd_list,
        "trace": cmd_trace,
        "plot": cmd_plot,
        "sweep": cmd_sweep,
        "sweep-summary": cmd_sweep_summary,
        "show": cmd_show,
        "compare": cmd_compare,
        "report": cmd_report,
    }
    try:
        with terminated():  # SIGTERM cleans up like Ctrl-C
            return commands[args.command](args)
    except Terminated:
        print("netsim: terminated; nothing half-written was left", file=sys.stderr)
        return 143
    except InputError as e:
        if args.traceback:
            raise
        print(f"netsim: error: {e}", file=sys.stderr)
        return 2
    except SimulationError as e:
        if args.traceback:
            raise
        print(f"netsim: run failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("netsim: interrupted; nothing was written", file=sys.stderr)
        return 130


def cmd_run(args: argparse.Namespace) -> int:
    from netsim import scenario_file
    from netsim.results import check_output_dir
    from netsim.runner import run

    backend = args.backend or ("ray" if args.address else "inline")
    if args.address and backend != "ray":
        raise InputError("--address joins a Ray cluster; it cannot be used with --backend inline")
    file = scenario_file.load(args.scenario)
    overrides = file.parse_assignments(args.assignments)
    scenario = file.build(overrides)
    if args.trace is not None and not args.trace.is_file():
        raise InputError(f"--trace {args.trace}: file not found")
    out = args.out or Path("runs") / default_name(args.scenario)
    check_output_dir(out, args.force)
    bar = None if args.quiet else _progress_bar(scenario.name)
    try:
        result = run(
            scenario,
            backend=backend,
            hosts=args.hosts,
            address=args.address,
            trace=args.trace,
            progress=None if bar is None else bar.update_to,
        )
    finally:
        if bar is not None:
            bar.close()
    result.write(out, force=args.force)
    if not args.quiet:
        print(format_summary(result.summary, out))
    return 0


class _Bar:
    """A tqdm bar driven by the protocol's progress fraction (0..1)."""

    def __init__(self, label: str) -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            total=1000,
            desc=label,
            leave=False,
            disable=None,  # only on a terminal
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}",
        )

    def update_to(self, fraction: float) -> None:
        target = int(min(1.0, max(0.0, fraction)) * 1000)
        if target > self._bar.n:
            self._bar.update(target - self._bar.n)

    def close(self) -> None:
        self._bar.close()


def _progress_bar(label: str) -> _Bar:
    return _Bar(label)


def cmd_list(args: argparse.Namespace) -> int:
    import algorithms
    import topologies
    from netsim import scenario_file

    def first_line(obj: Any) -> str:
        return scenario_file.first_sentence(obj.__doc__ or "")

    print("algorithms:")
    for name, cls in algorithms.ALGORITHMS.items():
        print(f"  {name:<18} {first_line(cls)}")
    print("topologies (scenario parameter `topology`, or a .graphml / edge-list file):")
    for name, fn in topologies.GENERATORS.items():
        print(f"  {name:<18} {first_line(fn)}")
    print("combination weights: " + ", ".join(topologies.RULES))
    print("device profiles: " + ", ".join(topologies.PROFILES))
    files = args.scenarios or sorted(Path("scenarios").glob("*.py"))
    for path in files:
        f = scenario_file.load(path)
        print(f"\nscenario {path}: {f.doc}")
        for p in f.parameters.values():
            print(f"  --set {p.name}=<{p.describe()}>  (default {p.default!r})")
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    from netsim import trace_import
    from netsim.trace_info import trace_stats
    from netsim.traces import read_trace

    if args.trace_command == "import":
        if args.output.exists() and args.output.is_dir():
            raise InputError(f"{args.output}: is a directory; expected a file name")
        inputs = [p for p in (args.input, args.map) if p is not None and p.exists()]
        if args.output.exists() and any(args.output.samefile(p) for p in inputs):
            raise InputError(f"{args.output}: is an input; choose another output")
        refuse_existing(args.output, "output", args.force)
        check_writable(args.output, "output")
        selection = trace_import.Selection(
            start=None if args.start is None else trace_import.parse_time(args.start, "--start"),
            duration=None
            if args.duration is None
            else trace_import.parse_duration(args.duration, "--duration"),
            scale=args.scale,
            nodes=args.nodes,
            sample_seed=args.sample,
            map_file=args.map,
            gap=args.gap,
        )
        imported = trace_import.to_events(trace_import.read(args.format, args.input), selection)
        header = [f"imported by netsim {__version__} from {args.input} (format {args.format})"]
        write_atomic(args.output, imported.text(header))
        downs = sum(e.event == "down" for e in imported.events)
        print(
            f"{args.output}: {len(imported.events):,} events ({downs:,} failures) on "
            f"{len(imported.mapping)} nodes of {imported.candidates} with data in the window; "
            f"{(imported.end - imported.start) / imported.scale:.6g} simulated s"
        )
        return 0
    events = read_trace(args.trace)
    if args.trace_command == "info":
        print(f"{args.trace}")
        for line in trace_stats(events, args.until).lines():
            print(f"  {line}")
        return 0
    from netsim.plots import availability_chart

    out = png_output(args.output or args.trace.with_suffix(".png"), args.force)
    trace_stats(events, args.until)  # the same checks as info
    availability_chart(events, out, end=args.until, max_nodes=args.max_nodes)
    print(out)
    return 0


def default_name(scenario: Path) -> str:
    """``<scenario>-<date>-<time>-<random>``: two runs started in the same
    second do not collide."""
    import secrets

    return f"{scenario.stem}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def png_output(path: Path, force: bool) -> Path:
    """The PNG a plot writes: ``.png`` added when there is no suffix; an
    existing file replaced only with ``force``; a place netsim can write."""
    if path.suffix == "":
        path = path.with_suffix(".png")
    elif path.suffix.lower() != ".png":
        raise InputError(f"-o {path}: expected a .png file name")
    if path.is_dir():
        raise InputError(f"-o {path}: is a directory; expected a file name")
    refuse_existing(path, "-o", force)
    check_writable(path, "-o")
    return path


def cmd_plot(args: argparse.Namespace) -> int:
    from netsim.plots import metric_figure

    out = png_output(args.output, args.force)
    print(
        metric_figure(
            args.runs,
            args.metric,
            out,
            node=args.node,
            log=args.log,
            mean=args.mean,
            against=args.against,
        )
    )
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from netsim import sweep

    if args.retries < 0:
        raise InputError(f"--retries: expected an integer >= 0, got {args.retries}")
    if args.cpus is not None and not args.cpus > 0:
        raise InputError(f"--cpus: expected a number > 0, got {args.cpus}")
    spec = sweep.build_spec(
        args.scenario,
        grid=args.grid,
        zipped=args.zip,
        seeds=args.seeds,
        grid_file=args.grid_file,
        num_cpus=args.cpus,
        memory=None if args.memory is None else args.memory * 1e9,
        backend=args.point_backend,
        hosts=args.point_hosts,
    )
    out = args.out or Path("sweeps") / default_name(args.scenario)
    bar = None if args.quiet else _SweepBar(len(spec.points))
    start = time.perf_counter()
    try:
        progress = sweep.run_sweep(
            spec,
            out,
            resume=args.resume,
            allow_changed=args.allow_changed,
            address=args.address,
            working_dir=args.working_dir,
            max_in_flight=args.max_in_flight,
            retries=args.retries,
            on_update=None if bar is None else bar.update,
        )
    except sweep.SweepInterrupted as e:
        p = e.progress
        print(
            f"netsim: interrupted: {p.skipped + p.done} of {p.total} points done, nothing "
            f"finished was lost; finish with --out {out} --resume",
            file=sys.stderr,
        )
        return 130
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - start
    ran = progress.done + progress.failed
    print(
        f"sweep {out}: {progress.total} points: {progress.skipped + progress.done} done "
        f"({progress.skipped} before this resume), {progress.failed} failed; "
        f"{ran} ran in {wall:.3g} s; table {out / sweep.TABLE_FILE}"
    )
    return 0 if progress.failed == 0 else 1


class _SweepBar:
    def __init__(self, total: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc="sweep", unit="point", disable=None)

    def update(self, progress: object) -> None:
        from netsim.sweep import Progress

        assert isinstance(progress, Progress)
        finished = progress.skipped + progress.done + progress.failed
        if finished > self._bar.n:
            self._bar.update(finished - self._bar.n)
        self._bar.set_postfix(
            done=progress.skipped + progress.done,
            failed=progress.failed,
            running=progress.running,
            refresh=False,
        )

    def close(self) -> None:
        self._bar.close()


def cmd_show(args: argparse.Namespace) -> int:
    import pandas as pd

    from netsim.results import class_table, device_table, load_run

    result = load_run(args.run)
    print(format_summary(result.summary, args.run))
    if args.devices:
        with pd.option_context("display.width", 200, "display.max_columns", 50):
            print("\nper device:")
            print(device_table(result).to_string(float_format=lambda v: f"{v:.4g}"))
            print("\nby device class:")
            print(class_table(result).to_string(float_format=lambda v: f"{v:.4g}"))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from netsim.report import report

    out = args.output
    if out.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"-o {out}: expected an .html file name")
    if out.is_dir():
        raise InputError(f"-o {out}: is a directory; expected a file name")
    refuse_existing(out, "-o", args.force)
    check_writable(out, "-o")
    print(report(args.path, out))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    import pandas as pd

    from netsim.results import read_run_files
    from netsim.sweep import SPEC_FILE, load_sweep

    if len(args.runs) == 1 and (args.runs[0] / SPEC_FILE).is_file():
        sweep = load_sweep(args.runs[0])
        params = sorted({k for p in sweep.spec.points for k in p})
        finals = [c for c in sweep.table.columns if c.startswith("final_")]
        table = sweep.table[["point", *params, "status", *finals]]
    else:
        rows = []
        for run in args.runs:
            _, summary = read_run_files(run)
            rows.append(
                {
                    "run": str(run),
                    "algorithm": summary.get("algorithm"),
                    **summary.get("params", {}),
                    **{f"final_{k}": v for k, v in summary.get("final", {}).items()},
                }
            )
        table = pd.DataFrame(rows)
        # parameters that are the same in every run say nothing: leave them out
        same = [
            c
            for c in table.columns
            if c != "run" and not c.startswith("final_") and table[c].astype(str).nunique() == 1
        ]
        table = table.drop(columns=same)
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


def cmd_sweep_summary(args: argparse.Namespace) -> int:
    import pandas as pd

    from netsim.sweep import summarize

    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(summarize(args.sweep_dir).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0
