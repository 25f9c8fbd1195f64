"""One contract over every registered algorithm: the same metrics inline,
sharded inline and on Ray; devices that restart from scratch; messages
conserved. And on Ray, message contents never pass through the driver."""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any

import numpy as np
import pytest

import netsim
from algorithms import ALGORITHMS
from tests.conftest import build

TRANSFER = {
    "rounds": 2,
    "samples": 2000,
    "small_clients": 4,
    "medium_clients": 2,
    "distill_epochs": 1,
    "failures": 0.3,
    "mttr_s": 0.05,
}
AEQUA = {"honest": 4, "free_riders": 2, "rounds": 2, "samples": 2000, "hidden": 16, "widths": 4}
# algorithm -> (scenario file, parameters with failures, devices keep state between steps)
CASES: dict[str, tuple[str, dict[str, Any], bool]] = {
    "consensus": (
        "consensus",
        {"nodes": 7, "iterations": 30, "failures": 0.2, "mttr_s": 0.05},
        True,
    ),
    "gossip": (
        "consensus",
        {"algorithm": "gossip", "nodes": 6, "iterations": 8, "failures": 0.1, "mttr_s": 1.0},
        True,
    ),
    "diffusion_lms": (
        "diffusion_lms",
        {"nodes": 7, "iterations": 100, "failures": 0.2, "mttr_s": 0.05},
        True,
    ),
    "apsm": (
        "sparse_diffusion",
        {"nodes": 7, "dim": 20, "nonzeros": 3, "iterations": 100, "failures": 0.2, "mttr_s": 0.05},
        True,
    ),
    "fedavg": ("fedavg", {"clients": 10, "rounds": 3, "failures": 0.3, "mttr_s": 0.02}, False),
    "fedbuff": (
        "fedavg",
        {"mode": "async", "clients": 10, "rounds": 4, "failures": 0.3, "mttr_s": 0.02},
        False,
    ),
    "fedcode": (
        "fedcode",
        {"clients": 6, "rounds": 4, "hidden": 32, "failures": 0.3, "mttr_s": 0.05},
        True,
    ),
    "aequa": ("aequa", {**AEQUA, "failures": 0.3, "mttr_s": 0.05}, False),
    "standalone": (
        "aequa",
        {**AEQUA, "algorithm": "standalone", "failures": 0.5, "mttr_s": 0.0001},
        False,
    ),
    "dsgd": ("dsgd", {"nodes": 6, "rounds": 3, "failures": 0.3, "mttr_s": 0.02}, True),
    "feddf": ("takfl", {"algorithm": "feddf", **TRANSFER}, False),
    "takfl": ("takfl", {"algorithm": "takfl", **TRANSFER}, False),
    "split_inference": (
        "split_inference",
        {"models": "tiny", "beta": 1.0, "devices": 4, "requests": 10, "rate": 2.0}
        | {"failures": 0.3, "mttr_s": 1.0},
        False,
    ),
}


def test_every_registered_algorithm_is_covered() -> None:
    assert set(CASES) == set(ALGORITHMS)


@cache
def scenario(name: str, on_recover: str = "resume") -> netsim.Scenario:
    file, params, _ = CASES[name]
    s = build(file, **params)
    assert s.algorithm.name == name
    return dataclasses.replace(s, failures=dataclasses.replace(s.failures, on_recover=on_recover))


@cache
def reference(name: str, on_recover: str = "resume") -> netsim.Result:
    return netsim.run(scenario(name, on_recover))


@pytest.mark.parametrize("name", sorted(CASES))
def test_failures_happen_and_messages_are_conserved(name: str) -> None:
    r = reference(name)
    assert r.summary["failures"] > 0
    m = r.summary["messages"]
    assert m["sent"] == m["delivered"] + m["dropped"] + m["in_flight"]
    assert m["sent"] > 0 or name == "standalone"  # each device alone: nothing to send


@pytest.mark.parametrize("name", sorted(CASES))
def test_sharding_inline_changes_nothing(name: str) -> None:
    sharded = netsim.run(scenario(name), hosts=3)
    assert sharded.summary["hosts"] == 3
    assert sharded.metrics.equals(reference(name).metrics)
    assert sharded.failures == reference(name).failures


@pytest.mark.ray
@pytest.mark.parametrize("name", sorted(CASES))
def test_ray_with_two_hosts_changes_nothing(ray_session: None, name: str) -> None:
    on_ray = netsim.run(scenario(name), backend="ray", hosts=2)
    assert (on_ray.summary["backend"], on_ray.summary["hosts"]) == ("ray", 2)
    assert on_ray.metrics.equals(reference(name).metrics)
    assert on_ray.summary["messages"] == reference(name).summary["messages"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_devices_can_restart_from_scratch(name: str) -> None:
    restarted = reference(name, "restart")
    assert restarted.summary["failures"] > 0
    m = restarted.summary["messages"]
    assert m["sent"] == m["delivered"] + m["dropped"] + m["in_flight"]
    assert netsim.run(scenario(name, "restart"), hosts=2).metrics.equals(restarted.metrics)
    if CASES[name][2]:  # forgetting their state shows in the results
        assert not restarted.metrics.equals(reference(name).metrics)


# ------------------------------------------------------------------ no payload through the driver
def _array_bytes(obj: Any, seen: set[int] | None = None) -> int:
    """Bytes of every numpy array reachable from ``obj`` (dicts, lists,
    dataclasses), not following Ray object references."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            return sum(_array_bytes(x, seen) for x in obj.ravel())
        return int(obj.nbytes)
    if isinstance(obj, dict):
        return sum(_array_bytes(v, seen) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(_array_bytes(v, seen) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return sum(_array_bytes(getattr(obj, f.name), seen) for f in dataclasses.fields(obj))
    return 0


@pytest.mark.ray
def test_model_contents_never_reach_the_driver(
    ray_session: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FedAvg on Ray with a model of 1,300 and of 19,210 parameters: the
    arrays the driver receives from hosts, and sends them, add up to the
    same bytes: none of it is a model."""
    from actors import ray_backend

    counted = {"in": 0, "out": 0}
    meta, submit = ray_backend.RayFuture.meta, ray_backend.RayBackend.submit

    def counting_meta(self: Any) -> Any:
        out = meta(self)
        counted["in"] += _array_bytes(out)
        return out

    def counting_submit(self: Any, host: int, requests: Any) -> Any:
        counted["out"] += _array_bytes(list(requests))
        return submit(self, host, requests)

    monkeypatch.setattr(ray_backend.RayFuture, "meta", counting_meta)
    monkeypatch.setattr(ray_backend.RayBackend, "submit", counting_submit)
    seen = {}
    for hidden in (16, 256):
        counted.update({"in": 0, "out": 0})
        s = build("fedcode", codec="none", clients=6, rounds=3, hidden=hidden)
        r = netsim.run(s, backend="ray", hosts=2)
        model_bytes = r.metrics[r.metrics.metric == "bytes_up"]["value"].iloc[0] / 6
        seen[hidden] = (counted["in"], counted["out"], model_bytes)
    assert seen[16][2] * 10 < seen[256][2]  # the models differ in size ...
    assert seen[16][:2] == seen[256][:2]  # ... what the driver handled does not
    assert max(seen[256][:2]) < seen[256][2] / 4  # and is far smaller than one model
