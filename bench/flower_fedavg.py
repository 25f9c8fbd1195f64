"""The reference FedAvg workload in Flower's simulation runtime, for
``bench/bench_flower.py`` (run with a Python that has Flower installed; Flower
is not a netsim dependency):

    FLWR_TELEMETRY_ENABLED=0 PYTHONPATH=bench /work/flower-venv/bin/python bench/flower_fedavg.py

scikit-learn's digits scaled to [0, 1], a stratified 20% test split, the rest
cut IID into 100 equal client shards (as netsim's ``iid`` partition does);
each round Flower's ``FedAvg`` samples 10% of the clients, each trains an MLP
64-32-10 for 10 epochs of SGD (lr 0.1, batch 16, shuffled), and the server
averages the results weighted by examples and evaluates the global model on
the test split. The last line printed is ``RESULT {json}`` with the final
test accuracy. Uses Flower's Message API (``ClientApp``, ``ServerApp``,
``flwr.serverapp.strategy.FedAvg``) and ``flwr.simulation.run_simulation``
on its Ray backend, two CPUs per client (its backend's default; on 2 cores
one client at a time was faster than two, which ``--cpus-per-client 1`` gives).
"""

from __future__ import annotations

import argparse
import functools
import json
from importlib.metadata import version
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from flwr.simulation import run_simulation
from sklearn.datasets import load_digits
from torch import nn

SEED = 0
CLIENTS = 100
ROUNDS = 20
FRACTION = 0.1
EPOCHS = 10
BATCH = 16
LR = 0.1
HIDDEN = 32


@functools.cache
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """Train and test arrays and the clients' shards (built once per process)."""
    d = load_digits()
    x, y = d.images.reshape(len(d.images), -1).astype(np.float32) / 16.0, d.target.astype(np.int64)
    g = np.random.default_rng(SEED)
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        test[g.choice(idx, round(0.2 * len(idx)), replace=False)] = True
    train = np.flatnonzero(~test)
    shards = [np.sort(p) for p in np.array_split(g.permutation(len(train)), CLIENTS)]
    return x[train], y[train], x[test], y[test], shards


def model() -> nn.Module:
    return nn.Sequential(nn.Linear(64, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10))


def train(net: nn.Module, x: np.ndarray, y: np.ndarray, generator: torch.Generator) -> None:
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    net.train()
    for _ in range(EPOCHS):
        order = torch.randperm(len(xt), generator=generator)
        for start in range(0, len(xt), BATCH):
            batch = order[start : start + BATCH]
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(net(xt[batch]), yt[batch]).backward()
            opt.step()


client_app = ClientApp()


@client_app.train()
def client_train(msg: Message, context: Context) -> Message:
    torch.set_num_threads(1)
    pid = int(context.node_config["partition-id"])
    x_train, y_train, _, _, shards = data()
    net = model()
    net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    rnd = int(msg.content["config"]["server-round"])
    train(
        net,
        x_train[shards[pid]],
        y_train[shards[pid]],
        torch.Generator().manual_seed(rnd * CLIENTS + pid),
    )
    content = RecordDict(
        {
            "arrays": ArrayRecord(net.state_dict()),
            "metrics": MetricRecord({"num-examples": len(shards[pid])}),
        }
    )
    return Message(content=content, reply_to=msg)


server_app = ServerApp()
accuracy: dict[int, float] = {}


def central_evaluate(rnd: int, arrays: ArrayRecord) -> MetricRecord:
    _, _, x_test, y_test, _ = data()
    net = model()
    net.load_state_dict(arrays.to_torch_state_dict())
    net.eval()
    with torch.no_grad():
        pred = net(torch.from_numpy(x_test)).argmax(dim=1).numpy()
    accuracy[rnd] = float((pred == y_test).mean())
    return MetricRecord({"accuracy": accuracy[rnd]})


@server_app.main()
def server_main(grid: Grid, context: Context) -> None:
    torch.manual_seed(SEED)
    strategy = FedAvg(fraction_train=FRACTION, fraction_evaluate=0.0, min_available_nodes=CLIENTS)
    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(model().state_dict()),
        num_rounds=ROUNDS,
        evaluate_fn=central_evaluate,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpus-per-client", type=float, default=2.0)
    args = parser.parse_args()
    # Import this file as a module so that Ray's workers unpickle the apps by
    # reference (bench/ on PYTHONPATH) and build the data once per worker.
    import flower_fedavg as task

    backend: dict[str, Any] = {
        "client_resources": {"num_cpus": args.cpus_per_client, "num_gpus": 0.0},
        "init_args": {"include_dashboard": False, "log_to_driver": False},
    }
    run_simulation(
        server_app=task.server_app,
        client_app=task.client_app,
        num_supernodes=CLIENTS,
        backend_config=backend,  # type: ignore[arg-type]
    )
    final = task.accuracy[max(task.accuracy)]
    result = {"accuracy": final, "rounds": max(task.accuracy), "flwr": version("flwr")}
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
