"""A small federated run's start-up: the shortcuts that keep heavy imports
out of it (digits without scikit-learn, FLOPs of linear models without
torch's counter, plain SGD without ``torch.optim``) give exactly what the
library paths give, and a FedAvg run on digits loads none of those libraries."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from algorithms import datasets, learning, models
from tests.conftest import ROOT


def test_digits_without_scikit_learn_are_scikit_learns_digits() -> None:
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = datasets.digits()
    np.testing.assert_array_equal(x, d.images.astype(np.float32)[:, None] / 16.0)
    np.testing.assert_array_equal(y, d.target)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert not x.flags.writeable  # one copy per process, shared by every split


@pytest.mark.parametrize(
    ("name", "shape", "hidden"),
    [("mlp", (1, 8, 8), 32), ("mlp", (64,), 7), ("mlp", (1, 40), 16), ("logreg", (1, 8, 8), 32)],
)
def test_linear_flops_are_what_torchs_counter_counts(
    name: str, shape: tuple[int, ...], hidden: int
) -> None:
    model = models.build(name, shape, 10, seed=0, hidden=hidden)
    assert models.linear_flops(model, shape) == (
        models.counted_forward_flops(model, shape),
        models.counted_training_flops(model, shape, 10),
    )


def test_other_models_are_counted_by_torch() -> None:
    model = models.build("cnn", (1, 8, 8), 10, seed=0)
    assert models.linear_flops(model, (1, 8, 8)) is None
    assert models.training_flops_per_sample(model, (1, 8, 8), 10) == (
        models.counted_training_flops(model, (1, 8, 8), 10)
    )
    mlp = models.build("mlp", (1, 8, 8), 10, seed=0)
    mlp[1].weight.requires_grad_(False)  # a frozen layer: no weight gradient to count
    assert models.linear_flops(mlp, (1, 8, 8)) is None


def test_plain_sgd_is_torch_sgd_to_the_bit() -> None:
    import torch

    split = datasets.split(datasets.DataSpec("digits"), 1, seed=0)
    x, y = split.x_train[:200], split.y_train[:200]
    ours = models.build("mlp", (1, 8, 8), 10, seed=3)
    theirs = models.build("mlp", (1, 8, 8), 10, seed=3)
    learning.local_train(
        ours, x, y, epochs=3, batch_size=16, lr=0.1, optimizer="sgd",
        generator=torch.Generator().manual_seed(5),
    )  # fmt: skip
    opt = torch.optim.SGD(theirs.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(5)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(3):
        order = torch.randperm(len(xt), generator=g)
        for start in range(0, len(xt), 16):
            batch = order[start : start + 16]
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(theirs(xt[batch]), yt[batch]).backward()
            opt.step()
    assert models.get_vector(ours).tobytes() == models.get_vector(theirs).tobytes()


HEAVY = ("sklearn", "torch._dynamo", "matplotlib", "ray")


def test_a_fedavg_run_on_digits_loads_no_heavy_library() -> None:
    code = (
        "import json, sys, netsim\n"
        "from netsim import scenario_file\n"
        "f = scenario_file.load('scenarios/fedavg.py')\n"
        "r = netsim.run(f.build({'clients': 4, 'rounds': 1, 'local_epochs': 1}))\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_the_command_exits_quickly_with_its_status_and_its_outputs(tmp_path) -> None:
    """``python -m netsim`` (as the ``netsim`` command) skips the interpreter's
    teardown but keeps what an exit must do: status, flushed output, files."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "netsim", "run", "scenarios/consensus.py", "--set", "nodes=6"]
    ok = subprocess.run(
        [*cmd, "--out", str(out)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stderr
    assert "final consensus_error" in ok.stdout  # printed last, flushed before the exit
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario"] == "consensus"
    bad = subprocess.run(
        [*cmd, "--out", str(out)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "holds a run already" in bad.stderr
