"""Benchmark: where a round's time goes on Ray. Two actors play the two hosts
of diffusion LMS at 1,000 nodes, dim 50 (each host: 500 devices, a 200 kB
payload a round), and the driver calls both once a round, as netsim does.
Prints the mean wall time of a round with each mechanism added in turn:

- ``plain``: one actor call to each host, small outputs only;
- ``+ payload``: the call also returns the payload as a second result
  (``num_returns=2``; 200 kB goes to the object store);
- ``+ fetch``: each host also fetches both hosts' payloads of the last round
  (``ray.get`` of object references passed in the call), what netsim does now;
- ``compiled``: a Ray Compiled Graph doing the same exchange in two stages
  (each host exports the rows the other needs, then each host runs its step
  on them), over shared-memory channels;
- ``compiled, empty``: the floor of a compiled graph: the driver sends a few
  bytes to both actors, which answer a few bytes (no exchange);

and, in the same run, a round of the reference numpy loop of
``bench_diffusion.py`` (1,000 nodes, average degree 6, dim 50).

No assertions. ``python bench/bench_ray_latency.py [--rounds 300]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import ray

REQUEST = {"devices": np.arange(500), "inbox": np.zeros(3000, dtype=np.int64)}
META = {"payload.nbytes": np.full(500, 400), "err2": np.zeros(500)}


class Host:
    def __init__(self) -> None:
        self.x = np.zeros((500, 50))

    def plain(self, request: Any) -> Any:
        return META

    def with_payload(self, request: Any, refs: tuple[Any, ...] = ()) -> Any:
        if refs:
            ray.get(list(refs))
        return META, {"payload": self.x.copy()}

    def export(self, request: Any) -> np.ndarray:
        return self.x[:100].copy()  # rows the other host needs (about a third cross)

    def step(self, request: Any, *imports: np.ndarray) -> Any:
        return META

    def empty(self, request: Any) -> bytes:
        return b"x"


def numpy_round_ms(rounds: int, n: int = 1000, dim: int = 50) -> float:
    """A round of the reference loop: LMS step, then one sparse combination."""
    from scipy import sparse

    rng = np.random.default_rng(0)
    a_t = sparse.random(n, n, density=6 / n, random_state=1, format="csr") + sparse.eye(n)
    est, target, mu = np.zeros((n, dim)), rng.standard_normal(dim), 0.01

    def one_round() -> None:
        nonlocal est
        u = rng.standard_normal((n, dim))
        d = u @ target + rng.standard_normal(n)
        est = a_t @ (est + mu * (d - np.sum(u * est, axis=1))[:, None] * u)

    return timed(rounds, one_round)


def timed(rounds: int, one_round: Callable[[], None]) -> float:
    for _ in range(10):  # warm-up
        one_round()
    start = time.perf_counter()
    for _ in range(rounds):
        one_round()
    return (time.perf_counter() - start) / rounds * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    actor: Any = ray.remote(Host).options(num_cpus=1e-4)
    hosts = [actor.remote() for _ in range(2)]
    ray.get([h.__ray_ready__.remote() for h in hosts])
    ms = {"plain": timed(args.rounds, lambda: ray.get([h.plain.remote(REQUEST) for h in hosts]))}

    def payload() -> None:
        ray.get([h.with_payload.options(num_returns=2).remote(REQUEST)[0] for h in hosts])

    ms["+ payload"] = timed(args.rounds, payload)
    last: list[Any] = [h.with_payload.options(num_returns=2).remote(REQUEST)[1] for h in hosts]

    def fetch() -> None:
        calls = [h.with_payload.options(num_returns=2).remote(REQUEST, tuple(last)) for h in hosts]
        ray.get([c[0] for c in calls])
        last[:] = [c[1] for c in calls]

    ms["+ fetch (netsim now)"] = timed(args.rounds, fetch)
    from ray.dag import InputNode, MultiOutputNode

    with InputNode() as request:
        exports = [h.export.bind(request) for h in hosts]
        dag = MultiOutputNode([h.step.bind(request, *exports) for h in hosts])
    compiled = dag.experimental_compile()
    ms["compiled graph"] = timed(args.rounds, lambda: ray.get(compiled.execute(REQUEST)))
    compiled.teardown()
    with InputNode() as request:
        dag = MultiOutputNode([h.empty.bind(request) for h in hosts])
    compiled = dag.experimental_compile()
    ms["compiled, empty"] = timed(args.rounds, lambda: ray.get(compiled.execute(b"r")))
    compiled.teardown()
    ms["numpy loop (reference)"] = numpy_round_ms(args.rounds)
    ray.shutdown()
    print(f"a round of 2 Ray hosts, 200 kB payload each ({args.rounds} rounds, mean):")
    for name, value in ms.items():
        print(f"  {name:22s} {value:6.2f} ms")


if __name__ == "__main__":
    main()
