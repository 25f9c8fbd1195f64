"""The ``netsim`` command line's parser: commands, flags, their help and
their types (:mod:`netsim.cli` runs them)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from netsim import __version__
from netsim.outputs import GRAPHML_MAX_LINKS

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
        "(summary.json, metrics.parquet, failures.csv, nodes.parquet, links.parquet, "
        f"and topology.graphml up to {GRAPHML_MAX_LINKS:,} directed links or with --graphml).",
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
        "--placement",
        choices=("graph", "blocks"),
        default="graph",
        help="how devices are cut into hosts: graph (reverse Cuthill-McKee order, so that "
        "few messages cross hosts; default) or blocks (by device id); results are the same",
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
    run.add_argument(
        "--graphml",
        action="store_true",
        default=None,
        help="write topology.graphml whatever the run's size (by default only up to "
        f"{GRAPHML_MAX_LINKS:,} directed links; nodes.parquet and links.parquet hold the same "
        "graph)",
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
