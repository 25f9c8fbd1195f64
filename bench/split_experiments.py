"""Split computing against on-device and full-offload inference (docs/split.md).

1. **Rate against accuracy**: bytes per request and each task's metric
   (accuracy, box IoU, mask IoU) on the inference set, for every trained
   ``beta`` (one shared stream, and one stream per task), PNG and JPEG at
   several qualities (the server runs the teacher on what arrives), and the
   on-device models.
2. **Where each mode wins**: a sweep of scenarios/split_inference.py over the
   uplink bandwidth (``--uplinks``, six decades by default) for two device
   classes (phone, iot) and every mode, at a light load (no queueing worth
   the name): mean and p95 latency and device energy per request; the
   crossover bandwidths (log-interpolated); the largest reductions of split
   against each baseline.
3. **Load**: one server shared by a growing number of devices: latency
   percentiles against the offered load, beside M/D/1 theory for the mean.

Figures go to docs/img/split_rate.png, split_bandwidth.png, split_load.png.

    python bench/split_experiments.py [--out sweeps/split] [--models default]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from algorithms.split import PRESETS, image_codecs, modes
from algorithms.split.task_metrics import score
from algorithms.split.training import Pipelines, trained
from netsim import plots, sweep

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "split_inference.py"
IMG = ROOT / "docs" / "img"
MODES = ("local", "local_teacher", "png", "jpeg", "split", "split_per_task")
BASELINES = ("local", "local_teacher", "png", "jpeg")
JPEG_QUALITIES = (90, 70, 50, 30, 10)


# ------------------------------------------------------------ 1. rate/accuracy
def rate_accuracy(models: str, images: int) -> pd.DataFrame:
    """Bytes per image and task metrics of every way to serve the inference set."""
    config = PRESETS[models]
    pipes = Pipelines(trained(config))
    data = modes.inference_set(config, images)
    index = np.arange(images)
    rows = []

    def add(name: str, param: float, nbytes: float, pred: object) -> None:
        s = score(pred, data, index)  # type: ignore[arg-type]
        rows.append(
            {
                "method": name,
                "param": param,
                "bytes": nbytes,
                "accuracy": float(np.mean(s["correct"])),
                "box_iou": float(np.mean(s["box_iou"])),
                "mask_iou": float(np.mean(s["mask_iou"])),
            }
        )

    add("local", np.nan, 0.0, pipes.local(data.images))
    png = image_codecs.encode_png(data.images)
    add("png", np.nan, np.mean([len(b) for b in png]), pipes.teacher(data.images))
    for q in JPEG_QUALITIES:
        sent = [[b] for b in image_codecs.encode_jpeg(data.images, q)]
        pred = modes.server_predictions(pipes, "jpeg", sent, 0.0)
        add("jpeg", q, np.mean([len(m[0]) for m in sent]), pred)
    for mode in ("split", "split_per_task"):
        for beta in config.betas if mode == "split" else config.per_task_betas:
            streams = modes.device_messages(pipes, mode, data.images, beta, 0)
            received = [list(per_image) for per_image in zip(*streams, strict=True)]
            nbytes = np.mean([sum(len(b) for b in m) for m in received])
            add(mode, beta, nbytes, modes.server_predictions(pipes, mode, received, beta))
    return pd.DataFrame(rows)


# ------------------------------------------------------------ 2. bandwidth
def bandwidth_sweep(out: Path, models: str, uplinks: list[float], beta: float) -> pd.DataFrame:
    spec = sweep.build_spec(
        SCENARIO,
        grid=[
            f"mode={','.join(MODES)}",
            "device=phone,iot",
            "uplink_Bps=" + ",".join(f"{u:g}" for u in uplinks),
            f"models={models}",  # one-value axes: fixed for every point
            f"beta={beta:g}",
            "rate=0.02",
            "requests=25",
        ],
    )
    return _run(spec, out)


def _run(spec: sweep.SweepSpec, out: Path) -> pd.DataFrame:
    progress = sweep.run_sweep(spec, out, resume=out.exists())
    if progress.failed:
        raise SystemExit(f"{progress.failed} points of {out} failed")
    table = pd.read_parquet(out / sweep.TABLE_FILE)
    table = table[table.status == "done"].reset_index(drop=True)
    frames = []
    for _, point in table.iterrows():
        requests = pd.read_parquet(out / point.run_dir / "requests.parquet")
        ok = requests[requests.status == "ok"]
        frames.append(
            {
                **{k: point[k] for k in table.columns if k in spec_params(spec)},
                "latency_mean_s": ok.latency_s.mean(),
                "latency_p50_s": ok.latency_s.quantile(0.50),
                "latency_p95_s": ok.latency_s.quantile(0.95),
                "latency_p99_s": ok.latency_s.quantile(0.99),
                "energy_J": ok.energy_J.mean(),
                "bytes": ok.bytes_up.mean(),
                "server_queue_s": ok.server_queue_s.mean(),
                "completed": len(ok),
            }
        )
    return pd.DataFrame(frames)


def spec_params(spec: sweep.SweepSpec) -> set[str]:
    return {name for point in spec.points for name in point}


def crossover(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> list[float]:
    """Bandwidths where curves ``a`` and ``b`` cross (log-log interpolation)."""
    d = np.log(a) - np.log(b)
    out = []
    for i in range(len(x) - 1):
        if d[i] == 0:
            out.append(float(x[i]))
        elif d[i] * d[i + 1] < 0:
            t = d[i] / (d[i] - d[i + 1])
            out.append(float(np.exp(np.log(x[i]) + t * (np.log(x[i + 1]) - np.log(x[i])))))
    return out


def wins(table: pd.DataFrame) -> dict[str, object]:
    """Crossovers and the largest reductions of split against each baseline."""
    result: dict[str, object] = {}
    for device, rows in table.groupby("device"):
        by_mode = {m: r.sort_values("uplink_Bps") for m, r in rows.groupby("mode")}
        x = by_mode["split"].uplink_Bps.to_numpy()
        split = by_mode["split"]
        for base in BASELINES:
            other = by_mode[base]
            for metric in ("latency_mean_s", "latency_p95_s", "energy_J"):
                a, b = split[metric].to_numpy(), other[metric].to_numpy()
                reduction = 1 - a / b
                best = int(np.argmax(reduction))
                result[f"{device}/{base}/{metric}"] = {
                    "crossovers_Bps": crossover(x, a, b),
                    "max_reduction": float(reduction[best]),
                    "at_uplink_Bps": float(x[best]),
                }
    return result


# ------------------------------------------------------------ 3. load
def load_sweep(out: Path, models: str, beta: float, devices: list[int]) -> pd.DataFrame:
    spec = sweep.build_spec(
        SCENARIO,
        grid=[
            "devices=" + ",".join(str(d) for d in devices),
            f"models={models}",
            f"beta={beta:g}",
            "mode=split",
            "rate=5",
            "requests=60",
            "uplink_Bps=1e7",
            f"server_flops={LOAD_SERVER_FLOPS:g}",
        ],
    )
    return _run(spec, out)


LOAD_SERVER_FLOPS = 2e9  # small enough that a few dozen devices saturate it


# ------------------------------------------------------------ figures
def figures(
    rate: pd.DataFrame, bandwidth: pd.DataFrame, load: pd.DataFrame, service_s: float
) -> None:
    plt = plots.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, metric, label in zip(
        axes, ("accuracy", "box_iou", "mask_iou"), ("accuracy", "box IoU", "mask IoU"), strict=True
    ):
        for method, marker in (("split", "o-"), ("split_per_task", "s--"), ("jpeg", "^-")):
            r = rate[rate.method == method].sort_values("bytes")
            ax.plot(r.bytes, r[metric], marker, label=method)
        for method, marker in (("png", "k*"), ("local", "rx")):
            r = rate[rate.method == method]
            ax.plot(np.maximum(r.bytes, 1), r[metric], marker, ms=10, label=method)
        ax.set_xscale("log")
        ax.set_xlabel("bytes per request")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    plots.save_png(fig, IMG / "split_rate.png")

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    for col, device in enumerate(("phone", "iot")):
        rows = bandwidth[bandwidth.device == device]
        curves = {m: r.sort_values("uplink_Bps") for m, r in rows.groupby("mode")}
        for mode in MODES:
            r = curves[mode]
            (line,) = axes[0, col].plot(r.uplink_Bps, r.latency_mean_s, "o-", label=mode)
            axes[1, col].plot(r.uplink_Bps, r.energy_J, "o-", label=mode)
            if mode in BASELINES:  # where split starts or stops beating this baseline
                split = curves["split"]
                for x in crossover(
                    split.uplink_Bps.to_numpy(),
                    split.latency_mean_s.to_numpy(),
                    r.latency_mean_s.to_numpy(),
                ):
                    axes[0, col].axvline(x, color=line.get_color(), ls=":", lw=1.2)
        axes[0, col].set_title(f"{device}: mean latency (dotted: split crosses a baseline)")
        axes[1, col].set_title(f"{device}: device energy per request")
        for ax in axes[:, col]:
            ax.set_xscale("log")
            ax.set_yscale("log")
        axes[1, col].set_xlabel("uplink, bytes/s")
    axes[0, 0].set_ylabel("s")
    axes[1, 0].set_ylabel("J")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    plots.save_png(fig, IMG / "split_bandwidth.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    rho = load.devices * 5 * service_s
    load = load.assign(rho=rho).sort_values("rho")
    for q in ("p50", "p95", "p99"):
        ax.plot(load.rho, load[f"latency_{q}_s"], "o-", label=q)
    stable = load.rho < 1
    theory = load.rho[stable] / (2 / service_s * (1 - load.rho[stable]))
    base = load.latency_mean_s - load.server_queue_s
    ax.plot(load.rho[stable], base[stable] + theory, "k:", label="mean, M/D/1")
    ax.plot(load.rho, load.latency_mean_s, "ks", ms=4, label="mean, measured")
    ax.axvline(1.0, color="grey", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("server load (offered / capacity)")
    ax.set_ylabel("latency, s")
    ax.legend(fontsize=8)
    fig.tight_layout()
    plots.save_png(fig, IMG / "split_load.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "sweeps" / "split")
    parser.add_argument("--models", default="default", choices=sorted(PRESETS))
    parser.add_argument("--beta", type=float, default=None, help="the split model swept")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--uplinks", default="1e2,3e2,1e3,3e3,1e4,3e4,1e5,3e5,1e6,3e6,1e7,3e7,1e8")
    args = parser.parse_args()
    config = PRESETS[args.models]
    trained(config)  # once, before the sweeps' workers look for it
    beta = args.beta if args.beta is not None else config.per_task_betas[0]
    rate = rate_accuracy(args.models, args.images)
    print(rate.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    uplinks = [float(u) for u in args.uplinks.split(",")]
    bandwidth = bandwidth_sweep(args.out / "bandwidth", args.models, uplinks, beta)
    print(json.dumps(wins(bandwidth), indent=1))
    devices = [1, 2, 4, 8, 16, 24, 32, 36, 40, 44, 48, 52, 56, 64]
    load = load_sweep(args.out / "load", args.models, beta, devices)
    costs = modes.mode_costs(Pipelines(trained(config)), "split", beta, 0)
    service_s = costs.server_flops / LOAD_SERVER_FLOPS
    print(load.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    figures(rate, bandwidth, load, service_s)
    args.out.mkdir(parents=True, exist_ok=True)
    rate.to_csv(args.out / "rate_accuracy.csv", index=False)
    bandwidth.to_csv(args.out / "bandwidth.csv", index=False)
    load.to_csv(args.out / "load.csv", index=False)


if __name__ == "__main__":
    main()
