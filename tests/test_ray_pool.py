"""Warm hosts: a second Ray run in a process loads its devices onto the
actors of the first, an actor killed while idle is never reused (the run
starts a fresh one), and the pool forgets actors of an earlier Ray session."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import netsim
from tests.conftest import build


def _ids(actors: list[Any]) -> set[str]:
    return {a._actor_id.hex() for a in actors}


@pytest.mark.ray
def test_a_second_run_reuses_the_actors_of_the_first(ray_session: None) -> None:
    from actors.ray_pool import POOL

    scenario = build("consensus", nodes=8, iterations=5)
    first = netsim.run(scenario, backend="ray", hosts=2)
    idle, started = _ids(POOL.idle()), POOL.started
    assert len(idle) >= 2
    second = netsim.run(scenario, backend="ray", hosts=2)
    assert POOL.started == started  # no actor started ...
    assert second.summary["hosts_reused"] == 2
    assert _ids(POOL.idle()) == idle  # ... the same actors ran it, and are back
    assert second.metrics.equals(first.metrics)
    assert second.metrics.equals(netsim.run(scenario).metrics)


@pytest.mark.ray
def test_a_killed_idle_actor_is_not_reused(ray_session: None) -> None:
    import ray

    from actors.ray_pool import POOL

    scenario = build("consensus", nodes=8, iterations=5)
    POOL.clear()  # only this test's two actors in the pool
    netsim.run(scenario, backend="ray", hosts=2)
    killed = _ids(POOL.idle())
    assert len(killed) == 2
    for actor in POOL.idle():
        ray.kill(actor)
    started = POOL.started
    result = netsim.run(scenario, backend="ray", hosts=2)  # finds them dead, starts others
    assert result.metrics.equals(netsim.run(scenario).metrics)
    assert result.summary["hosts_reused"] == 0 and POOL.started == started + 2
    assert not (_ids(POOL.idle()) & killed)


@pytest.mark.ray
def test_the_pool_forgets_the_actors_of_an_earlier_ray_session(
    ray_session: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from actors import ray_pool

    pool = ray_pool.HostPool()

    def start(node: str | None) -> Any:
        return SimpleNamespace(unload=SimpleNamespace(remote=lambda: None))

    a = pool.acquire([None], start)[0]
    pool.release([(a, None)])
    assert pool.acquire([None], start) == [a] and pool.started == 1  # warm
    pool.release([(a, None)])
    monkeypatch.setattr(ray_pool, "_session", lambda: ("another session", "job"))
    assert pool.acquire([None], start) != [a] and pool.started == 2  # Ray was restarted


@pytest.mark.ray
def test_a_host_reads_its_own_recent_payloads_from_memory(ray_session: None) -> None:
    """Its own payloads of a recent call: the very objects it returned; any
    other (another actor's, or its own from a call no longer kept): from
    Ray's object store."""
    import numpy as np
    import ray

    from actors.ray_backend import PayloadHandle, _RayHost

    host = _RayHost()
    host.me = "this actor"
    mine = [{"payload": np.arange(3)}]
    host.recent[5] = mine
    theirs, old = ray.put([{"payload": np.arange(4)}]), ray.put([{"payload": np.arange(2)}])
    got = host._fetch(
        [
            PayloadHandle(None, "this actor", 5),
            PayloadHandle(theirs, "another actor", 5),
            PayloadHandle(old, "this actor", 4),
        ]
    )
    assert got[0] is mine
    assert list(got[1][0]["payload"]) == [0, 1, 2, 3] and list(got[2][0]["payload"]) == [0, 1]
