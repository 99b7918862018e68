"""Placement quality: the exact solver (HiGHS) and the greedy against the optimum, on seeded
clusters of mixed consumer GPUs (8/12/16/24/48 GB) and model sets, with the synthetic
estimator.

Small instances (3-4 nodes, 7-8 models): the optimum comes from an exhaustive search
(depth-first over every per-GPU candidate of every model, with a bound). Medium instances
(8 nodes, 24 models): exact solver vs greedy, with the exact solver's proven bound.

    PYTHONPATH=.collections .venv/bin/python benchmarks/placement/bench_quality.py

Scores are those of the solver's first stage: replicas placed first, then the quality rank of
each (its quantization, engine and GPU count; 0 = the worst that fits), summed.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _synthetic as syn  # noqa: E402

from ansible_collections.teamllm.stack.plugins.module_utils import _placement as P  # noqa: E402
from ansible_collections.teamllm.stack.plugins.module_utils._placement import (  # noqa: E402
    candidates as C,
)
from ansible_collections.teamllm.stack.plugins.module_utils._placement import needs as N  # noqa: E402


def instance(seed, nodes, n_models):
    rng = random.Random(seed)  # noqa: S311 - seeded benchmark data
    hosts = syn.cluster(rng, nodes, max_gpus=2)
    models = syn.models(rng, n_models, max_replicas=1)
    for m in models:  # keep the small instances small: 8k context at most
        m["context"] = min(m["context"], 8192)
    return hosts, models


def run(hosts, models, solver, time_limit=20):
    t = time.perf_counter()
    result = P.plan(models, hosts, solver=solver, time_limit=time_limit, estimator=syn,
                    allow_partial=True)
    return result, time.perf_counter() - t


def exhaustive(hosts, models):
    """Best (placed, quality) by depth-first search; one replica per model here."""
    devices, host_map = P.normalize_hosts(hosts, P.GIB, int(P.DEFAULT_RAM_RESERVE_GIB * P.GIB))
    requests = P.normalize_models(models, set(host_map), syn.ENGINES)
    cluster = C.Cluster(devices, host_map, {r.host for r in requests if r.host})
    types = C.Types(requests, cluster, N.Needs(syn), syn.ENGINES)
    reqs, tids, groups = types.expand(cluster)
    by_req = [[] for _ in requests]
    for r, t, g in zip(reqs.tolist(), tids.tolist(), groups.tolist(), strict=True):
        by_req[r].append((int(types.rank[t]), [int(c) for c in types.claims[t]],
                          cluster.group_devs[g]))
    for options in by_req:
        options.sort(key=lambda o: -o[0])
    best_q = [max((o[0] for o in options), default=0) for options in by_req]
    free = [d.capacity for d in devices]
    best = [(-1, -1)]

    def dfs(ri, placed, quality):
        if ri == len(requests):
            best[0] = max(best[0], (placed, quality))
            return
        if (placed + len(requests) - ri, quality + sum(best_q[ri:])) <= best[0]:
            return
        for rank, claims, devs in by_req[ri]:
            if all(free[k] >= c for k, c in zip(devs, claims, strict=False)):
                for k, c in zip(devs, claims, strict=False):
                    free[k] -= c
                dfs(ri + 1, placed + 1, quality + rank)
                for k, c in zip(devs, claims, strict=False):
                    free[k] += c
        dfs(ri + 1, placed, quality)

    dfs(0, 0, 0)
    return best[0], len(devices), len(reqs)


def gib(result):
    return sum(d["planned"] for h in result["placement"].values() for d in h["devices"]) / P.GIB


def pct(value):
    return "-" if value is None else f"{value:.1%}"


def score(result):
    return result["placed"], result["quality"]


def main():
    print("## Small instances (optimum by exhaustive search)\n")
    print("| seed | GPUs | models | candidates | greedy placed/quality | exact placed/quality | "
          "optimum placed/quality | exact proven | exact s | search s | GiB greedy / exact |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    small = []
    for seed in range(30):
        hosts, models = instance(seed, 3 + seed % 2, 7 + seed % 2)
        g, _ = run(hosts, models, "greedy")
        e, seconds = run(hosts, models, "auto")
        t = time.perf_counter()
        opt, n_gpus, n_cands = exhaustive(hosts, models)
        search = time.perf_counter() - t
        small.append((score(g), score(e), opt, e["optimal"], seconds))
        print(f"| {seed} | {n_gpus} | {len(models)} | {n_cands} | {g['placed']}/{g['quality']} | "
              f"{e['placed']}/{e['quality']} | {opt[0]}/{opt[1]} | {e['optimal']} | "
              f"{seconds:.2f} | {search:.2f} | {gib(g):.0f} / {gib(e):.0f} |")
    n = len(small)
    print(f"\nexact = optimum (placed and quality): {sum(s[1] == s[2] for s in small)}/{n}; "
          f"proven optimal: {sum(s[3] for s in small)}/{n}; "
          f"greedy = optimum: {sum(s[0] == s[2] for s in small)}/{n}; "
          f"greedy placed fewer: {sum(s[0][0] < s[2][0] for s in small)}/{n}; replicas placed: "
          f"greedy {sum(s[0][0] for s in small)}, exact {sum(s[1][0] for s in small)}, "
          f"optimum {sum(s[2][0] for s in small)}; median exact "
          f"{statistics.median(s[4] for s in small):.2f} s\n")
    print("## Medium instances (8 nodes, 24 models; exact solver 20 s limit)\n")
    print("| seed | GPUs | candidates | greedy placed/quality | exact placed/quality | bound "
          "(replicas) | gap | quality gap | packing gap | exact proven | exact s | solver |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    medium = []
    for seed in range(10):
        hosts, models = instance(1000 + seed, 8, 24)
        g, _ = run(hosts, models, "greedy")
        e, seconds = run(hosts, models, "auto", 20)
        gpus = sum(len(h["gpus"]["gpus"]) for h in hosts.values())
        medium.append((score(g), score(e)))
        print(f"| {seed} | {gpus} | {e['candidates']} | {g['placed']}/{g['quality']} | "
              f"{e['placed']}/{e['quality']} | {e['bound']} | {e['gap']:.1%} | "
              f"{pct(e['quality_gap'])} | {pct(e['packing_gap'])} | {e['optimal']} | "
              f"{seconds:.2f} | {e['solver']} |")
    print(f"\nreplicas placed: greedy {sum(m[0][0] for m in medium)}, exact "
          f"{sum(m[1][0] for m in medium)}; exact better on "
          f"{sum(m[1] > m[0] for m in medium)}/{len(medium)}")


if __name__ == "__main__":
    main()
