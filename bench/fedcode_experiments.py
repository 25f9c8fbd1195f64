"""FedCode against FedAvg and the other codecs, and where compression pays in
simulated time (docs/fedcode.md). Two sweeps of scenarios/fedcode.py on a
local Ray instance, resumed if their directories exist:

1. ``codecs``: every codec, IID and Dirichlet(0.5), seeds 0..N-1, 60 rounds;
   table of total bytes (up plus down), final accuracy and simulated time to
   90% accuracy, each against FedAvg (``codec=none``) of the same seed;
2. ``bandwidth`` and ``bandwidth_fast_downlink``: FedAvg and FedCode over
   client uplink bandwidths from 1 kB/s to 100 MB/s (five decades), with the
   scenario's 12.5 MB/s client downlink and with a 1 GB/s one; simulated time
   to 90% accuracy, the crossover bandwidth, and a plot.

    python bench/fedcode_experiments.py [--out sweeps/fedcode] [--seeds 3]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd

from netsim import sweep

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "fedcode.py"
CODECS = ("none", "fedcode", "fp16", "qsgd", "topk")
BANDWIDTHS = (1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6, 3e6, 1e7, 3e7, 1e8)


def run(name: str, out: Path, grid: list[str], seeds: int) -> pd.DataFrame:
    spec = sweep.build_spec(SCENARIO, grid=grid, zipped=[], seeds=seeds, grid_file=None)
    where = out / name
    progress = sweep.run_sweep(spec, where, resume=where.exists())
    if progress.failed:
        raise SystemExit(f"{progress.failed} points of {where} failed")
    table = pd.read_parquet(where / sweep.TABLE_FILE)
    return table[table.status == "done"]


def codec_table(table: pd.DataFrame) -> str:
    """Markdown: per partition and codec, means over seeds, and paired
    differences with FedAvg of the same seed."""
    base = table[table.codec == "none"].set_index(["partition", "seed"])
    lines = [
        "| partition | codec | bytes up+down | vs FedAvg | accuracy | vs FedAvg (points) "
        "| time to 90% (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for partition in ("iid", "dirichlet"):
        for codec in CODECS:
            rows = table[(table.partition == partition) & (table.codec == codec)]
            rows = rows.set_index(["partition", "seed"])
            ref = base.loc[rows.index]
            ratio = ref.bytes_sent / rows.bytes_sent
            delta = 100 * (rows.final_accuracy - ref.final_accuracy)
            reached = rows.final_time_to_target_s.dropna()
            time = (
                f"{reached.mean():.3f} ± {reached.std():.3f}"
                if len(reached) == len(rows)
                else f"{len(reached)} of {len(rows)} runs reach it"
            )
            accuracy = 100 * rows.final_accuracy
            lines.append(
                f"| {partition} | {codec} | {rows.bytes_sent.mean() / 1e6:.2f} MB "
                f"| {ratio.mean():.1f}× | {accuracy.mean():.2f}% ± {accuracy.std():.2f} "
                f"| {delta.mean():+.2f} ± {delta.std():.2f} | {time} |"
            )
    return "\n".join(lines)


def crossover(table: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Mean time to 90% per codec and bandwidth, and the bandwidth where
    FedCode stops being faster (log-linear interpolation of the difference)."""
    means = table.pivot_table(
        index="uplink_Bps", columns="codec", values="final_time_to_target_s", aggfunc="mean"
    )
    diff = np.log(means["fedcode"]) - np.log(means["none"])  # < 0: FedCode is faster
    cross = math.nan
    bw = np.log10(means.index.to_numpy(dtype=float))
    for i in range(len(diff) - 1):
        a, b = diff.iloc[i], diff.iloc[i + 1]
        if a < 0 <= b:
            cross = 10 ** (bw[i] + (bw[i + 1] - bw[i]) * (-a) / (b - a))
    return means, cross


def plot(curves: dict[str, tuple[pd.DataFrame, float]], path: Path) -> None:
    """Time to 90% against uplink bandwidth, one line style per downlink."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.4))
    for (downlink, (means, cross)), style in zip(curves.items(), ("-", "--"), strict=False):
        for codec, label, color in (
            ("none", "FedAvg (float32)", "C0"),
            ("fedcode", "FedCode (K = 64)", "C1"),
        ):
            ax.plot(
                means.index,
                means[codec],
                style,
                marker="o",
                color=color,
                label=f"{label}, downlink {downlink}",
            )
        if math.isfinite(cross):
            ax.axvline(cross, color="grey", linestyle=style, alpha=0.6)
            ax.annotate(
                f"crossover {cross / 1e6:.2g} MB/s",
                (cross, means["none"].min()),
                rotation=90,
                fontsize=8,
                va="bottom",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("client uplink bandwidth (bytes/s)")
    ax.set_ylabel("simulated time to 90% test accuracy (s)")
    ax.set_title("10 clients, MLP 64-200-10 on digits, 1 GFLOP/s clients")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "sweeps" / "fedcode")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "img" / "fedcode_time.png")
    args = parser.parse_args()
    codecs = run(
        "codecs", args.out, [f"codec={','.join(CODECS)}", "partition=iid,dirichlet"], args.seeds
    )
    print(codec_table(codecs))
    uplinks = f"uplink_Bps={','.join(f'{b:g}' for b in BANDWIDTHS)}"
    curves = {}
    for name, downlink, extra in (
        ("bandwidth", "12.5 MB/s", []),
        ("bandwidth_fast_downlink", "1 GB/s", ["downlink_Bps=1e9"]),
    ):
        table = run(
            name, args.out, ["codec=none,fedcode", uplinks, "rounds=25", *extra], args.seeds
        )
        means, cross = crossover(table)
        curves[downlink] = (means, cross)
        print(f"\nclient downlink {downlink}: mean simulated time to 90% (s)")
        print(means.to_string(float_format=lambda v: f"{v:.4g}"))
        if math.isfinite(cross):
            print(f"FedCode reaches 90% sooner below {cross:.3g} bytes/s of client uplink")
        else:
            print("no crossover in this range")
    plot(curves, args.plot)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
