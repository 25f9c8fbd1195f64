"""Commands that read results back: ``show``, ``compare``, ``plot``,
``report`` and ``sweep-summary`` (dispatched by :mod:`netsim.cli`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from netsim.errors import InputError
from netsim.outputs import check_writable, refuse_existing
from netsim.summary_table import format_summary


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
