"""TAKFL against FedDF and per-prototype FedAvg (docs/takfl.md): two sweeps of
scenarios/takfl.py on a local Ray instance, resumed if their directories
exist.

1. ``methods``: the three algorithms, seeds 0..N-1 (defaults: MNIST-1D,
   Dirichlet 0.3, three prototypes, 30 rounds): accuracy per prototype and
   on average, the margins between methods paired by seed, bytes per
   prototype and direction, where a round's time goes, and accuracy against
   simulated time (plot);
2. ``server``: FedDF and TAKFL with a server of 10 and 100 GFLOP/s (1,000 is
   the first sweep's default): simulated time to 40% average accuracy, and
   the server's time per round. The accuracy of every round is the same at
   every budget (the same seed, the same computations); only when it comes
   moves.

    python bench/takfl_experiments.py [--out sweeps/takfl] [--seeds 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from netsim import sweep

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "takfl.py"
METHODS = ("fedavg", "feddf", "takfl")
PROTOTYPES = ("small", "medium", "large")
BUDGETS = (1e10, 1e11)  # and the scenario's default, 1e12


def run(name: str, out: Path, grid: list[str], seeds: int) -> pd.DataFrame:
    spec = sweep.build_spec(SCENARIO, grid=grid, zipped=[], seeds=seeds, grid_file=None)
    where = out / name
    progress = sweep.run_sweep(spec, where, resume=where.exists())
    if progress.failed:
        raise SystemExit(f"{progress.failed} points of {where} failed")
    table = pd.read_parquet(where / sweep.TABLE_FILE)
    table = table[table.status == "done"].copy()
    table["metrics"] = [pd.read_parquet(where / d / "metrics.parquet") for d in table.run_dir]
    table["prototype_of"] = [_prototypes(where / d / "topology.graphml") for d in table.run_dir]
    return table


def _prototypes(path: Path) -> dict[int, str]:
    import networkx as nx

    g = nx.read_graphml(path, node_type=int)
    return {k: d["prototype"] for k, d in g.nodes(data=True) if "prototype" in d}


def last(metrics: pd.DataFrame, name: str) -> float:
    rows = metrics[(metrics.metric == name) & (metrics.node == -1)].sort_values("step")
    return float(rows["value"].iloc[-1])


def accuracy_table(table: pd.DataFrame) -> str:
    names = [*PROTOTYPES, "average"]
    acc = {
        (row.algorithm, row.seed): {
            **{p: 100 * last(row.metrics, f"accuracy_{p}") for p in PROTOTYPES},
            "average": 100 * last(row.metrics, "accuracy"),
        }
        for row in table.itertuples()
    }
    seeds = sorted({s for _, s in acc})
    lines = ["| method | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for m in METHODS:
        cells = [np.array([acc[(m, s)][n] for s in seeds]) for n in names]
        lines.append(
            f"| {m} | " + " | ".join(f"{c.mean():.1f} ± {c.std(ddof=1):.1f}" for c in cells) + " |"
        )
    for a, b in (("takfl", "feddf"), ("feddf", "fedavg"), ("takfl", "fedavg")):
        cells = [np.array([acc[(a, s)][n] - acc[(b, s)][n] for s in seeds]) for n in names]
        lines.append(
            f"| {a} − {b} | "
            + " | ".join(f"{c.mean():+.1f} ± {c.std(ddof=1):.1f}" for c in cells)
            + " |"
        )
    return "\n".join(lines)


def bytes_table(table: pd.DataFrame) -> str:
    """Per prototype and direction: bytes per round and per message (TAKFL, seed 0)."""
    row = table[(table.algorithm == "takfl") & (table.seed == 0)].iloc[0]
    m, of = row.metrics, row.prototype_of
    clients = {p: sum(1 for q in of.values() if q == p) for p in PROTOTYPES}
    lines = [
        "| prototype | clients | down per round | up per round | per message |",
        "|---|---|---|---|---|",
    ]
    for p in PROTOTYPES:
        down = m[m.metric == f"bytes_down_{p}"]["value"].mean()
        up = m[m.metric == f"bytes_up_{p}"]["value"].mean()
        lines.append(
            f"| {p} | {clients[p]} | {down / 1e3:.1f} kB | {up / 1e3:.1f} kB "
            f"| {up / clients[p]:,.0f} B |"
        )
    return "\n".join(lines)


def breakdown_table(table: pd.DataFrame) -> str:
    """Mean over rounds, clients and seeds: per prototype, a client's download,
    compute (decode, train, encode) and upload; the round until its last
    update; the server's step."""
    lines = [
        "| method | small: down / compute / up (ms) | medium | large | round to last update "
        "| server step |",
        "|---|---|---|---|---|---|",
    ]
    for m in METHODS:
        parts: dict[str, list[np.ndarray]] = {p: [] for p in PROTOTYPES}
        rounds, server = [], []
        for row in table[table.algorithm == m].itertuples():
            met = row.metrics
            per = met[met.node >= 0].pivot_table(
                index=["step", "node"], columns="metric", values="value"
            )
            per = per.dropna(subset=["download_s"])
            nodes = per.index.get_level_values("node")
            for p in PROTOTYPES:
                mine = [row.prototype_of.get(int(n)) == p for n in nodes]
                parts[p].append(per[mine][["download_s", "train_s", "upload_s"]].mean().to_numpy())
            rounds.append(met[met.metric == "round_duration_s"]["value"].mean())
            server.append(met[met.metric == "server_s"]["value"].mean())
        cells = [
            " / ".join(f"{1e3 * v:.1f}" for v in np.mean(parts[p], axis=0)) for p in PROTOTYPES
        ]
        lines.append(
            f"| {m} | "
            + " | ".join(cells)
            + f" | {1e3 * np.mean(rounds):.1f} ms | {1e3 * np.mean(server):.2f} ms |"
        )
    return "\n".join(lines)


def time_to(metrics: pd.DataFrame, target: float) -> float:
    rows = metrics[(metrics.metric == "accuracy") & (metrics.node == -1)].sort_values("step")
    hit = rows[rows["value"] >= target]
    return float(hit["time"].iloc[0]) if len(hit) else float("nan")


def plot_accuracy(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for color, m in zip(("C0", "C1", "C2"), METHODS, strict=True):
        for i, row in enumerate(table[table.algorithm == m].itertuples()):
            rows = row.metrics[(row.metrics.metric == "accuracy") & (row.metrics.node == -1)]
            rows = rows.sort_values("step")
            ax.plot(
                rows["time"],
                100 * rows["value"],
                color=color,
                alpha=0.8,
                label=m if i == 0 else None,
            )
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("test accuracy, mean over prototypes (%)")
    ax.set_title("MNIST-1D, Dirichlet 0.3, three prototypes (3 seeds each)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "sweeps" / "takfl")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "img" / "takfl_time.png")
    args = parser.parse_args()
    methods = run("methods", args.out, [f"algorithm={','.join(METHODS)}"], args.seeds)
    print("accuracy (%) after 30 rounds, mean ± standard deviation over seeds")
    print(accuracy_table(methods))
    print("\nbytes per prototype and direction")
    print(bytes_table(methods))
    print("\nwhere a round's time goes")
    print(breakdown_table(methods))
    plot_accuracy(methods, args.plot)
    print(f"plot: {args.plot}")
    budgets = ",".join(f"{b:g}" for b in BUDGETS)
    server = run(
        "server", args.out, ["algorithm=feddf,takfl", f"server_flops={budgets}"], args.seeds
    )
    default = methods[methods.algorithm != "fedavg"].copy()
    default["server_flops"] = 1e12
    both = pd.concat([server, default], ignore_index=True)
    both["to_target"] = [time_to(m, 0.4) for m in both.metrics]
    both["server_s"] = [m[m.metric == "server_s"]["value"].mean() for m in both.metrics]
    both["round_s"] = [m[m.metric == "round_duration_s"]["value"].mean() for m in both.metrics]
    print("\nsimulated time to 40% average accuracy, the server's step and the round until")
    print("its last update, per method and server budget (means over seeds, seconds)")
    print(
        both.groupby(["algorithm", "server_flops"])[["to_target", "server_s", "round_s"]]
        .mean()
        .to_string(float_format=lambda v: f"{v:.4g}")
    )


if __name__ == "__main__":
    main()
