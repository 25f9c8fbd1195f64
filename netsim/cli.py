"""The ``netsim`` command line: runs the command the parser
(:mod:`netsim.cli_parser`) read; ``run``, ``list``, ``trace`` and ``sweep``
here, the commands that read results back in :mod:`netsim.cli_results`.

Bad input is reported as one line on stderr with exit status 2 and nothing
written; a run that fails for another reason (a Ray host died) exits 1.
``--traceback`` shows Python tracebacks for debugging. The command itself
is :func:`entry`: :func:`main` and a quick exit.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from netsim import __version__
from netsim.cli_parser import build_parser
from netsim.cli_results import (
    cmd_compare,
    cmd_plot,
    cmd_report,
    cmd_show,
    cmd_sweep_summary,
    png_output,
)
from netsim.errors import InputError, SimulationError
from netsim.outputs import (
    Terminated,
    check_writable,
    refuse_existing,
    terminated,
    write_atomic,
)
from netsim.summary_table import format_summary


def entry() -> NoReturn:
    """The ``netsim`` command (and ``python -m netsim``): :func:`main`, then
    a quick exit. A normal exit first tears the interpreter down, which with
    torch loaded takes about half a second, more than a small run's outputs
    take to write; here the steps of an exit that matter are taken (threads
    finish, ``atexit`` handlers run, streams flush) and the rest skipped.
    An exception leaves the normal way."""
    import atexit
    import os
    import threading

    code = main()
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


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
            placement=args.placement,
            address=args.address,
            trace=args.trace,
            progress=None if bar is None else bar.update_to,
        )
    finally:
        if bar is not None:
            bar.close()
    result.write(out, force=args.force, graphml=args.graphml)
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
