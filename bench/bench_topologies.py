"""Benchmark: every named topology at large sizes, each in its own process.

    python bench/bench_topologies.py [--nodes 100000 1000000] [--only SPEC ...]
                                     [--timeout 300]

A SPEC is a generator's name, optionally with options:
``erdos_renyi:connect=bridge,degree=8``. The default runs every generator
with its defaults, and the variants that build where the defaults refuse.
Prints, per generator and size, the wall time of ``topologies.build``, the
node and edge counts and the process's peak resident memory above what the
imports alone take (``ru_maxrss``), or the one-line refusal. No assertions.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, sys, time
import topologies
from netsim.errors import InputError
spec, nodes = sys.argv[1], int(sys.argv[2])
name, _, opts = spec.partition(":")
options = {}
for item in filter(None, opts.split(",")):
    key, value = item.split("=")
    for kind in (int, float, str):
        try:
            options[key] = kind(value)
            break
        except ValueError:
            pass
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    g = topologies.build(name, nodes, seed=1, **options)
    out = {"nodes": g.number_of_nodes(), "edges": g.number_of_edges()}
except InputError as e:
    out = {"refused": str(e)}
out["wall_s"] = time.perf_counter() - start
out["peak_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
print(json.dumps(out))
"""


VARIANTS = [
    "erdos_renyi:connect=giant",
    "erdos_renyi:connect=bridge",
    "erdos_renyi:degree=16",
    "random_geometric:connect=bridge",
    "random_geometric:degree=16",
]


def measure(name: str, nodes: int, timeout: float) -> dict:
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, name, str(nodes)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        return {"timeout": timeout}
    if done.returncode:
        return {"failed": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    import topologies

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--only", nargs="+", default=[*topologies.GENERATORS, *VARIANTS])
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    print(f"{'topology':<34}{'nodes':>10}{'edges':>12}{'wall s':>9}{'peak MB':>9}  note")
    for nodes in args.nodes:
        for name in args.only:
            r = measure(name, nodes, args.timeout)
            if "timeout" in r or "failed" in r:
                note = f"timed out after {r['timeout']:.0f} s" if "timeout" in r else r["failed"]
                print(f"{name:<34}{nodes:>10,}{'':>12}{'':>9}{'':>9}  {note}")
                continue
            edges = f"{r['edges']:,}" if "edges" in r else ""
            note = f"refused: {r['refused']}" if "refused" in r else ""
            if "nodes" in r and r["nodes"] != nodes:
                note = f"{r['nodes']:,} nodes kept"
            print(
                f"{name:<34}{nodes:>10,}{edges:>12}{r['wall_s']:>9.2f}{r['peak_mb']:>9.0f}  {note}",
                flush=True,
            )


if __name__ == "__main__":
    main()
