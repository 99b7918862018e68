"""Placement speed and quality, greedy and exact side by side: 200 models x 50 nodes (target
< 1 s) and 5000 models x 1000 nodes (target < 30 s), seeded, with the synthetic estimator
(benchmarks/placement/_synthetic.py): mixed consumer GPUs (1-4 per node, 8-48 GB); "light"
models up to 14B at 2k-8k context, "heavy" the whole mix up to 70B and 16k context.

    PYTHONPATH=.collections .venv/bin/python benchmarks/placement/bench_speed.py

Not part of the unit tests. Prints Markdown; RESULTS.md holds the committed numbers. The
bound (most replicas any plan can place) comes from the exact run and holds for both rows.
"""

from __future__ import annotations

import datetime
import os
import platform
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _synthetic as syn  # noqa: E402

from ansible_collections.teamllm.stack.plugins.module_utils import _placement as P  # noqa: E402

CASES = (  # models, nodes, seed, mix, time limit of the exact solver
    (200, 50, 1, "light", 1), (200, 50, 2, "light", 1), (200, 50, 3, "light", 1),
    (200, 50, 1, "heavy", 1), (5000, 1000, 1, "light", 30),
)


def instance(n_models, n_nodes, seed, mix):
    rng = random.Random(seed)  # noqa: S311 - seeded benchmark data
    hosts = syn.cluster(rng, n_nodes)
    models = syn.models(rng, n_models, max_replicas=1, light=mix == "light")
    return hosts, models


def run(hosts, models, solver, time_limit):
    started = time.perf_counter()
    result = P.plan(models, hosts, solver=solver, time_limit=time_limit, estimator=syn,
                    allow_partial=True)
    return result, time.perf_counter() - started


def row(case, gpus, asked, result, wall, exact):
    models, nodes, seed, mix, limit = case
    bound = exact["bound"]
    gap = (bound - result["placed"]) / bound if bound else 0.0
    quality = f"{result['quality']}"
    if exact["quality_bound"] and result["placed"] == bound:
        quality += f" ({(exact['quality_bound'] - result['quality']) / exact['quality_bound']:.1%})"
    return (f"| {models} x {nodes} ({gpus} GPUs, {mix}) | {seed} | {asked} | "
            f"{limit if asked == 'auto' else '-'} | {result['solver']} | "
            f"{result['placed']} / {result['wanted']} | {bound} | {gap:.1%} | {quality} | "
            f"{result['optimal']} | {wall:.2f} | {result['greedy_seconds']:.2f} | "
            f"{result['solver_seconds']:.2f} | {result['explain_seconds']:.2f} | "
            f"{result['solver_status'] if asked == 'auto' else '-'} |")


def main():
    print(f"{datetime.date.today()}, python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{platform.machine()}, load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| models x nodes | seed | asked | limit s | plan by | placed / wanted | bound | "
          "gap | quality (gap) | optimal | total s | greedy s | HiGHS s | explain s | "
          "status |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for case in CASES:
        hosts, models = instance(*case[:4])
        gpus = sum(len(h["gpus"]["gpus"]) for h in hosts.values())
        greedy, greedy_wall = run(hosts, models, "greedy", case[4])
        exact, exact_wall = run(hosts, models, "auto", case[4])
        print(row(case, gpus, "greedy", greedy, greedy_wall, exact))
        print(row(case, gpus, "auto", exact, exact_wall, exact))
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
