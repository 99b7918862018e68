"""Placement speed: 200 models x 50 nodes (target < 1 s) and 5000 models x 1000 nodes
(target < 30 s), seeded, with the synthetic estimator (benchmarks/placement/_synthetic.py):
mixed consumer GPUs (1-4 per node, 8-48 GB), models up to 14B at 2k-8k context.

    PYTHONPATH=.collections .venv/bin/python benchmarks/placement/bench_speed.py

Not part of the unit tests. Prints a Markdown table; RESULTS.md holds the committed numbers.
"""

from __future__ import annotations

import os
import platform
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _synthetic as syn  # noqa: E402

from ansible_collections.teamllm.stack.plugins.module_utils import _placement as P  # noqa: E402


def load(models, hosts):
    """Scale the replica counts so the wanted memory is about 80% of the cluster's."""
    gpu_bytes = sum(g["memory_total"] for h in hosts.values() for g in h["gpus"]["gpus"])
    want = 0
    for m in models:
        spec = syn.MODELS[m["name"]]
        want += spec[0] * 1e9 * 0.7 * m["replicas"]
    return want / gpu_bytes


def case(n_models, n_nodes, seed, solver, time_limit, max_candidates=P.DEFAULT_MAX_CANDIDATES):
    rng = random.Random(seed)  # noqa: S311 - seeded benchmark data
    hosts = syn.cluster(rng, n_nodes)
    models = syn.models(rng, n_models, max_replicas=1, light=True)
    started = time.perf_counter()
    result = P.plan(models, hosts, solver=solver, time_limit=time_limit, estimator=syn,
                    allow_partial=True, max_candidates=max_candidates)
    seconds = time.perf_counter() - started
    placed = sum(len(h["instances"]) for h in result["placement"].values())
    wanted = sum(m["replicas"] for m in models)
    used = sum(d["planned"] for h in result["placement"].values() for d in h["devices"])
    return {
        "models": n_models, "nodes": n_nodes, "gpus": sum(len(h["gpus"]["gpus"]) for h in hosts.values()),
        "seed": seed, "asked": solver, "time_limit": time_limit, "solver": result["solver"],
        "status": result["solver_status"], "optimal": result["optimal"],
        "candidates": result["candidates"], "placed": placed, "wanted": wanted,
        "used_gib": used / syn.GIB, "seconds": seconds, "greedy_seconds": result["greedy_seconds"],
        "fallback": result["fallback_reason"], "load": load(models, hosts),
    }


def main():
    rows = []
    for seed in (1, 2, 3):
        rows.append(case(200, 50, seed, "greedy", 1))
        rows.append(case(200, 50, seed, "auto", 1))
        rows.append(case(200, 50, seed, "auto", 10))
    for seed in (1,):
        rows.append(case(5000, 1000, seed, "auto", 30))
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}")
    print("| models x nodes (GPUs) | seed | asked | limit s | used | status | candidates | "
          "placed / wanted | GiB planned | total s | greedy s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['models']} x {r['nodes']} ({r['gpus']}) | {r['seed']} | {r['asked']} | "
              f"{r['time_limit']} | {r['solver']} | {r['status']}"
              f"{' (' + r['fallback'] + ')' if r['fallback'] and r['asked'] != 'greedy' else ''} | "
              f"{r['candidates'] if r['candidates'] is not None else '-'} | "
              f"{r['placed']} / {r['wanted']} | {r['used_gib']:.0f} | {r['seconds']:.2f} | "
              f"{r['greedy_seconds']:.2f} |")


if __name__ == "__main__":
    main()
