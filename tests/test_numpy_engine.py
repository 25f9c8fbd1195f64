"""The numpy training engine (``LearningConfig(engine="numpy")``,
:mod:`algorithms.numpy_models`): its gradients and SGD steps are torch's to
float32 rounding, its parameters have torch's layout and initial bounds, its
FedAvg learns as well as torch's with the same messages, FLOPs and timing, it
is deterministic inline and on Ray, it imports no torch, and it refuses what
it cannot train."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import netsim
from algorithms import LearningConfig, ModelSpec, datasets, learning, models, numpy_models
from algorithms.federated import TAKFL, FedDF
from netsim.errors import InputError
from tests.conftest import ROOT, build
from tests.test_cli import run_cli

FEDAVG = str(ROOT / "scenarios" / "fedavg.py")
SHAPES = {"digits": (1, 8, 8), "signal": (1, 40), "flat": (60,)}


def _batch(n: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    split = datasets.split(datasets.DataSpec("digits"), 1, seed=0)
    pick = np.random.default_rng(seed).choice(len(split.x_train), n, replace=False)
    return split.x_train[pick], split.y_train[pick]


def _pair(name: str, hidden: int = 32, seed: int = 3):  # type: ignore[no-untyped-def]
    """A numpy model and a torch model of the same architecture holding the
    numpy model's parameters."""
    ours = numpy_models.build(name, (1, 8, 8), 10, seed, hidden)
    theirs = models.build(name, (1, 8, 8), 10, seed, hidden)
    models.set_vector(theirs, ours.get_vector())
    return ours, theirs


@pytest.mark.parametrize(("name", "hidden"), [("mlp", 32), ("mlp", 7), ("logreg", 32)])
def test_the_gradient_of_a_batch_is_torchs(name: str, hidden: int) -> None:
    import torch

    ours, theirs = _pair(name, hidden)
    x, y = _batch()
    loss, grad = ours.gradient(x, y)
    expected = torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y))
    expected.backward()
    expected_grad = torch.cat([p.grad.flatten() for p in theirs.parameters()]).numpy()
    assert loss == pytest.approx(float(expected.detach()), rel=1e-5)
    assert grad.dtype == np.float32 and np.abs(grad).max() > 1e-3
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["mlp", "logreg"])
def test_one_sgd_step_is_torchs(name: str) -> None:
    import torch

    ours, theirs = _pair(name)
    x, y = _batch(seed=1)
    before = ours.get_vector()
    ours.sgd_step(x, y, 0.1)
    torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    learning.sgd_step(list(theirs.parameters()), 0.1)
    assert not np.array_equal(ours.get_vector(), before)
    np.testing.assert_allclose(ours.get_vector(), models.get_vector(theirs), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("name", ["mlp", "logreg"])
def test_parameters_have_torchs_layout_bounds_and_flops(name: str, shape: str) -> None:
    import torch

    input_shape = SHAPES[shape]
    ours = numpy_models.build(name, input_shape, 10, seed=5, hidden=16)
    theirs = models.build(name, input_shape, 10, seed=5, hidden=16)
    assert ours.size == models.parameter_count(theirs)
    # torch's default nn.Linear initialisation: weight and bias in +-1/sqrt(fan_in)
    linear = [m for m in theirs if isinstance(m, torch.nn.Linear)]
    assert len(linear) == len(ours.layers)
    for (weight, bias), layer in zip(ours.layers, linear, strict=True):
        assert weight.shape == tuple(layer.weight.shape) and bias.shape == tuple(layer.bias.shape)
        bound = np.float32(1 / np.sqrt(layer.in_features))
        for p in (weight, bias):
            assert p.dtype == np.float32 and np.abs(p).max() <= bound
            assert np.abs(p).max() > 0.5 * bound  # spread over the interval, not bunched
    # the same vector in the torch model computes the same logits
    models.set_vector(theirs, ours.get_vector())
    np.testing.assert_array_equal(models.get_vector(theirs), ours.get_vector())
    x = np.random.default_rng(0).random((9, *input_shape), dtype=np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours.logits(x), expected, rtol=1e-5, atol=1e-6)
    assert ours.flops() == models.linear_flops(theirs, input_shape)


def test_initialisation_follows_the_seed_and_vectors_are_copied() -> None:
    a = numpy_models.build("mlp", (1, 8, 8), 10, seed=1)
    assert np.array_equal(a.get_vector(), numpy_models.build("mlp", (1, 8, 8), 10, 1).get_vector())
    assert not np.array_equal(a.get_vector(), numpy_models.build("mlp", (64,), 10, 2).get_vector())
    vector = a.get_vector()
    before = vector.copy()
    a.set_vector(vector)
    numpy_models.local_train(
        a, *_batch(40), epochs=2, batch_size=16, lr=0.5, generator=np.random.default_rng(0)
    )
    np.testing.assert_array_equal(vector, before)  # training never writes the caller's array
    assert not np.array_equal(a.get_vector(), before)
    with pytest.raises(ValueError, match="vector of 3 values for a model of 2410 parameters"):
        a.set_vector(np.zeros(3))


def test_evaluation_is_torchs() -> None:
    ours, theirs = _pair("mlp")
    split = datasets.split(datasets.DataSpec("digits"), 1, seed=0)
    accuracy, loss = numpy_models.evaluate(ours, split.x_test, split.y_test)
    expected_accuracy, expected_loss = learning.evaluate(theirs, split.x_test, split.y_test)
    assert accuracy == pytest.approx(expected_accuracy, rel=1e-6)  # torch: a float32 mean
    assert loss == pytest.approx(expected_loss, rel=1e-5)


# ------------------------------------------------------------------ FedAvg
# every client every round, until accuracy levels off (where one run's initial
# model matters least): a few seconds with torch
SMALL = {
    "clients": 10,
    "participation": 1.0,
    "rounds": 20,
    "local_epochs": 2,
    "lr": 0.2,
    "devices": "homogeneous",
}


@pytest.fixture(scope="module")
def numpy_run() -> netsim.Result:
    return netsim.run(build("fedavg", engine="numpy", **SMALL))


def test_fedavg_learns_as_well_as_with_torch_with_the_same_messages_and_costs(
    numpy_run: netsim.Result,
) -> None:
    """Same seeds, same scenario: accuracy within 2 points; FLOPs, bytes and
    so every simulated time identical (the engines differ in the parameters'
    values only)."""
    torch_run = netsim.run(build("fedavg", **SMALL))
    assert numpy_run.final["accuracy"] > 0.9
    assert abs(numpy_run.final["accuracy"] - torch_run.final["accuracy"]) <= 0.02
    ours, theirs = numpy_run.metrics, torch_run.metrics
    learned = ours["metric"].isin(["accuracy", "loss"])
    assert (ours["metric"] == theirs["metric"]).all()
    assert ours[~learned].equals(theirs[~learned])
    assert not ours[learned].equals(theirs[learned])
    assert numpy_run.summary["messages"] == torch_run.summary["messages"]


def test_dsgd_trains_with_the_numpy_engine() -> None:
    r = netsim.run(build("dsgd", nodes=6, rounds=4, engine="numpy"))
    assert r.final["accuracy"] > 0.5


def test_same_seed_same_run_sharded_or_not(numpy_run: netsim.Result) -> None:
    scenario = build("fedavg", engine="numpy", **SMALL)
    assert netsim.run(scenario).metrics.equals(numpy_run.metrics)
    assert netsim.run(scenario, hosts=3).metrics.equals(numpy_run.metrics)
    other = netsim.run(build("fedavg", engine="numpy", **{**SMALL, "seed": 1}))
    assert not other.metrics.equals(numpy_run.metrics)


@pytest.mark.ray
def test_ray_matches_inline(ray_session: None) -> None:
    scenario = build("fedavg", engine="numpy", **{**SMALL, "rounds": 4})
    inline = netsim.run(scenario)
    result = netsim.run(scenario, backend="ray", hosts=2)
    assert result.summary["backend"] == "ray"
    assert result.metrics.equals(inline.metrics)


# ------------------------------------------------------------------ start-up and refusals
HEAVY = ("torch", "sklearn", "matplotlib", "ray")


def test_the_command_imports_no_torch(tmp_path: Path) -> None:
    """``python -m netsim run scenarios/fedavg.py --set engine=numpy``, the
    whole process: none of the heavy libraries is imported (``-X importtime``
    lists every import)."""
    cmd = [sys.executable, "-X", "importtime", "-m", "netsim", "run", FEDAVG, "--set"]
    done = subprocess.run(
        [*cmd, "engine=numpy", "--set", "rounds=2", "--out", str(tmp_path / "run"), "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {
        ln.rsplit("|", 1)[1].strip()
        for ln in done.stderr.splitlines()
        if ln.startswith("import time:")
    }
    assert "algorithms.numpy_models" in imported  # what the listing lists
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert heavy == []
    assert (tmp_path / "run" / "summary.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["engine=numpy", "model=cnn"],
            "engine numpy: supports models logreg and mlp with optimizer sgd, got cnn",
        ),
        (
            ["engine=numpy", "optimizer=adam"],
            "engine numpy: supports models logreg and mlp with optimizer sgd, got optimizer adam",
        ),
        (["engine=jax"], "--set engine=jax: expected one of torch, numpy"),
    ],
)
def test_the_command_refuses_what_the_engine_cannot_train(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    sets = [a for s in args for a in ("--set", s)]
    code, _, err = run_cli(["run", FEDAVG, *sets, "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_slimmable_and_distillation_refuse_the_numpy_engine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    supports = "engine numpy: supports models logreg and mlp with optimizer sgd, got"
    with pytest.raises(InputError, match=f"{supports} a slimmable mlp"):
        LearningConfig(slimmable=True, engine="numpy")
    with pytest.raises(InputError, match=f"{supports} cnn"):
        LearningConfig(prototypes={"a": ModelSpec("mlp"), "b": ModelSpec("cnn")}, engine="numpy")
    data = datasets.DataSpec("digits", public_fraction=0.1)
    for method in (FedDF, TAKFL):
        with pytest.raises(InputError, match=r"engine numpy: (feddf|takfl) distils with torch"):
            method(learning=LearningConfig(data=data, engine="numpy"), rounds=1)
    scenario = tmp_path / "aequa_numpy.py"
    scenario.write_text(
        "import netsim, topologies\n"
        "from algorithms import Aequa, LearningConfig\n"
        "def scenario() -> netsim.Scenario:\n"
        "    learning = LearningConfig(slimmable=True, engine='numpy')\n"
        "    return netsim.Scenario('a', topologies.build('star', 4), Aequa(learning=learning))\n"
    )
    code, _, err = run_cli(["run", str(scenario), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and f"{supports} a slimmable mlp" in err
    assert len(err.strip().splitlines()) == 1
