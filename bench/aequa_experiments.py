"""Aequa against FedAvg and standalone training (docs/aequa.md): one sweep of
scenarios/aequa.py over the three algorithms and seeds 0..N-1 on a local Ray
instance (resumed if its directory exists), then, paired by seed:

- fairness: Pearson correlation of the estimated contributions with each
  participant's reward accuracy (Aequa), its standalone accuracy, and
  FedAvg's one model (undefined: every reward is the same); and of the
  standalone accuracies with Aequa's rewards (CFFL's definition);
- free riders' reward widths against ``p_min``;
- which honest participants' rewards beat their standalone accuracy;
- Aequa's full-width accuracy against FedAvg's (the same architecture, dense);
- compute per round: the clients' training time, Aequa over FedAvg, against
  the ratio expected from the sandwich rule, ``1 + E[f(p)] / f(1)`` for
  ``p ~ U[p_min, 1]``, with ``f`` the FLOPs of a step counted at each width;
- a figure: the width -> accuracy curve of every seed, and contribution
  against reward accuracy (docs/img/aequa.png).

    python bench/aequa_experiments.py [--out sweeps/aequa] [--seeds 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from algorithms.federated.aequa import pearson
from netsim import scenario_file, sweep

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "aequa.py"
METHODS = ("aequa", "fedavg", "standalone")


def run(out: Path, seeds: int) -> pd.DataFrame:
    spec = sweep.build_spec(
        SCENARIO, grid=[f"algorithm={','.join(METHODS)}"], zipped=[], seeds=seeds, grid_file=None
    )
    progress = sweep.run_sweep(spec, out, resume=out.exists())
    if progress.failed:
        raise SystemExit(f"{progress.failed} points of {out} failed")
    table = pd.read_parquet(out / sweep.TABLE_FILE)
    table = table[table.status == "done"].copy()
    table["metrics"] = [pd.read_parquet(out / d / "metrics.parquet") for d in table.run_dir]
    return table


def per_node(metrics: pd.DataFrame, name: str) -> pd.Series:
    rows = metrics[(metrics.metric == name) & (metrics.node >= 0)]
    return rows.groupby("node")["value"].last()


def mean_per_node(metrics: pd.DataFrame, name: str) -> pd.Series:
    rows = metrics[(metrics.metric == name) & (metrics.node >= 0)]
    return rows.groupby("node")["value"].mean()


def network(metrics: pd.DataFrame, name: str) -> pd.Series:
    rows = metrics[(metrics.metric == name) & (metrics.node == -1)].sort_values("step")
    return rows.set_index("step")["value"]


def expected_ratio(p_min: float, points: int = 400) -> tuple[float, float]:
    """``1 + E[f(p)] / f(1)`` for the scenario's slimmable model, and ``f(1)``."""
    from algorithms import datasets, slimmable

    defaults = scenario_file.load(SCENARIO).build({})
    learning = defaults.algorithm.learning
    split = datasets.split(learning.data, 2, 0)
    spec = learning.specs["default"]
    model = spec.build(split.input_shape, split.classes, 0)
    cost = slimmable.WidthCost(model, split.input_shape, split.classes)
    f = np.array([cost(p) for p in np.linspace(p_min, 1, points)])
    return 1 + float(f.mean()) / cost(1.0), cost(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "sweeps" / "aequa")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--figure", type=Path, default=ROOT / "docs" / "img" / "aequa.png")
    args = parser.parse_args()
    table = run(args.out, args.seeds)
    runs = {(r.algorithm, r.seed): r.metrics for r in table.itertuples()}
    defaults = {p.name: p.default for p in scenario_file.load(SCENARIO).parameters.values()}
    p_min, honest_count = float(defaults["p_min"]), int(defaults["honest"])
    riders = set(range(1 + honest_count, 1 + honest_count + int(defaults["free_riders"])))
    rows = []
    for seed in sorted(table.seed.unique()):
        aequa, fedavg, alone = (runs[(m, seed)] for m in METHODS)
        contribution = per_node(aequa, "contribution")
        reward = per_node(aequa, "reward_accuracy")
        width = per_node(aequa, "reward_width")
        standalone = per_node(alone, "standalone_accuracy")
        honest = [c for c in contribution.index if c not in riders]
        losers = [c for c in honest if reward[c] <= standalone[c]]
        train = {
            m: mean_per_node(runs[(m, seed)], "train_s").loc[honest].mean() for m in METHODS[:2]
        }
        rounds = {m: network(runs[(m, seed)], "round_duration_s").mean() for m in METHODS[:2]}
        rows.append(
            {
                "seed": seed,
                "pearson_aequa": pearson(contribution, reward),
                "pearson_standalone": pearson(contribution, standalone.loc[contribution.index]),
                "pearson_fedavg": float("nan"),  # one model for all: constant rewards
                "pearson_cffl": pearson(standalone.loc[reward.index], reward),
                "rider_width_max": float(width.loc[sorted(riders)].max()),
                "honest_below_standalone": losers,
                "aequa_full": network(aequa, "accuracy").iloc[-1],
                "fedavg": network(fedavg, "accuracy").iloc[-1],
                "standalone_mean": float(standalone.loc[honest].mean()),
                "train_ratio": train["aequa"] / train["fedavg"],
                "round_ratio": rounds["aequa"] / rounds["fedavg"],
            }
        )
    result = pd.DataFrame(rows).set_index("seed")
    pd.set_option("display.width", 200)
    print(result.round(3).to_string())
    gap = 100 * (result.aequa_full - result.fedavg)
    print(
        f"\nfairness (Pearson, contribution vs reward accuracy): "
        f"{result.pearson_aequa.mean():.3f} +- {result.pearson_aequa.std():.3f} "
        f"(min {result.pearson_aequa.min():.3f}); standalone's own accuracies: "
        f"{result.pearson_standalone.mean():.3f}; CFFL's (standalone vs reward): "
        f"{result.pearson_cffl.mean():.3f}; FedAvg: undefined (one model for all)"
    )
    print(f"free riders' largest reward width: {result.rider_width_max.max():g} (p_min {p_min:g})")
    print(f"Aequa full width - FedAvg: {gap.mean():+.2f} +- {gap.std():.2f} points")
    expected, f1 = expected_ratio(p_min)
    print(
        f"clients' training time per round, Aequa / FedAvg: {result.train_ratio.mean():.3f} "
        f"(expected from the sandwich rule {expected:.3f}; f(1) = {f1:,.0f} FLOPs per example); "
        f"round time: {result.round_ratio.mean():.3f}"
    )
    _figure(args.figure, runs, sorted(table.seed.unique()), riders)


def _figure(path: Path, runs: dict, seeds: list, riders: set[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for seed in seeds:
        m = runs[("aequa", seed)]
        left.plot(
            network(m, "curve_width"),
            network(m, "curve_accuracy_test"),
            marker=".",
            label=f"seed {seed}",
        )
        c, r = per_node(m, "contribution"), per_node(m, "reward_accuracy")
        honest = [k for k in c.index if k not in riders]
        right.scatter(c.loc[honest], r.loc[honest], label=f"seed {seed}")
        right.scatter(c.loc[sorted(riders)], r.loc[sorted(riders)], marker="x", color="k")
    left.set(xlabel="width p", ylabel="test accuracy", title="global model by width")
    right.set(
        xlabel="estimated contribution (improvement-weighted leave-one-out cosine)",
        ylabel="reward test accuracy",
        title="rewards (x: free riders)",
    )
    left.legend()
    right.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"figure: {path}")


if __name__ == "__main__":
    main()
