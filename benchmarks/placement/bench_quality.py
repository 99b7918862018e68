"""Placement quality: the MILP (HiGHS) and the greedy against the optimum, on seeded clusters
of mixed consumer GPUs (8/12/16/24/48 GB) and model sets, with the synthetic estimator.

Small instances (3-4 nodes, 7-8 models): the optimum comes from an exhaustive search
(depth-first over every candidate placement of every model, with a bound). Medium instances
(8 nodes, 24 models): MILP vs greedy only.

    PYTHONPATH=.collections .venv/bin/python benchmarks/placement/bench_quality.py

Scores are those of the MILP's first stage: replicas placed first, then the quality rank of
each (its quantization, engine and GPU count, 0 = its worst candidate).
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


def instance(seed, nodes, n_models):
    rng = random.Random(seed)  # noqa: S311 - seeded benchmark data
    hosts = syn.cluster(rng, nodes, max_gpus=2)
    models = syn.models(rng, n_models, max_replicas=1)
    for m in models:  # keep the small instances small: 8k context at most
        m["context"] = min(m["context"], 8192)
    return hosts, models


def setup(hosts, models):
    devices, host_map = P.normalize_hosts(hosts, P.GIB, 4 * P.GIB)
    requests = P.normalize_models(models, set(host_map), syn.ENGINES)
    needs = P.Needs(syn)
    options = [P._options_for(r, host_map, needs, syn.ENGINES) for r in requests]
    cands = P.candidates(requests, options, host_map, devices, needs)
    return requests, options, host_map, devices, needs, cands


def ranks(cands):
    levels = {}
    for c in cands:
        levels.setdefault(c.req, set()).add(c.option.quality)
    return {ri: {q: i for i, q in enumerate(sorted(qs))} for ri, qs in levels.items()}


def score(chosen, rank):
    return (len(chosen), sum(rank[c.req][c.option.quality] for c in chosen))


def exhaustive(requests, devices, cands, rank):
    """Best (placed, quality) by depth-first search; one replica per model here."""
    by_req = [[c for c in cands if c.req == ri] for ri in range(len(requests))]
    for lst in by_req:
        lst.sort(key=lambda c: -rank[c.req][c.option.quality])
    best_q = [max((rank[ri][c.option.quality] for c in by_req[ri]), default=0)
              for ri in range(len(requests))]
    free = [d.capacity for d in devices]
    best = [(-1, -1), []]
    chosen = []
    nodes = [0]

    def dfs(ri, placed, quality):
        nodes[0] += 1
        if ri == len(requests):
            if (placed, quality) > best[0]:
                best[0], best[1] = (placed, quality), list(chosen)
            return
        rest = len(requests) - ri
        if (placed + rest, quality + sum(best_q[ri:])) <= best[0]:
            return
        for c in by_req[ri]:
            if all(free[k] >= claim for k, claim in zip(c.devices, c.need.claims, strict=True)):
                for k, claim in zip(c.devices, c.need.claims, strict=True):
                    free[k] -= claim
                chosen.append(c)
                dfs(ri + 1, placed + 1, quality + rank[ri][c.option.quality])
                chosen.pop()
                for k, claim in zip(c.devices, c.need.claims, strict=True):
                    free[k] += claim
        dfs(ri + 1, placed, quality)

    dfs(0, 0, 0)
    return best[0], best[1], nodes[0]


def planned_gib(chosen):
    return sum(sum(c.need.claims) for c in chosen) / P.GIB


def run_small(seeds):
    rows = []
    for seed in seeds:
        hosts, models = instance(seed, 3 + seed % 2, 7 + seed % 2)
        requests, options, host_map, devices, needs, cands = setup(hosts, models)
        rank = ranks(cands)
        g = P.greedy(requests, options, host_map, devices, needs, "binpack")
        t = time.perf_counter()
        m, status = P.milp(requests, cands, host_map, devices, "binpack", 20, None)
        milp_s = time.perf_counter() - t
        t = time.perf_counter()
        opt, opt_chosen, visited = exhaustive(requests, devices, cands, rank)
        ex_s = time.perf_counter() - t
        rows.append({"seed": seed, "gpus": len(devices), "models": len(requests),
                     "candidates": len(cands), "greedy": score(g, rank), "milp": score(m, rank),
                     "optimum": opt, "milp_optimal": status["optimal"], "milp_s": milp_s,
                     "exhaustive_s": ex_s, "visited": visited,
                     "gib": (planned_gib(g), planned_gib(m), planned_gib(opt_chosen))})
    return rows


def run_medium(seeds, time_limit=20):
    rows = []
    for seed in seeds:
        hosts, models = instance(1000 + seed, 8, 24)
        requests, options, host_map, devices, needs, cands = setup(hosts, models)
        rank = ranks(cands)
        g = P.greedy(requests, options, host_map, devices, needs, "binpack")
        start = [cands.index(c) for c in g if c in cands]
        t = time.perf_counter()
        m, status = P.milp(requests, cands, host_map, devices, "binpack", time_limit, start)
        rows.append({"seed": seed, "gpus": len(devices), "models": len(requests),
                     "candidates": len(cands), "greedy": score(g, rank), "milp": score(m, rank),
                     "milp_optimal": status["optimal"], "milp_s": time.perf_counter() - t,
                     "gib": (planned_gib(g), planned_gib(m))})
    return rows


def main():
    small = run_small(range(30))
    print("## Small instances (optimum by exhaustive search)\n")
    print("| seed | GPUs | models | candidates | greedy placed/quality | MILP placed/quality | "
          "optimum placed/quality | MILP optimal | MILP s | search s | GiB greedy / MILP / opt |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in small:
        print(f"| {r['seed']} | {r['gpus']} | {r['models']} | {r['candidates']} | "
              f"{r['greedy'][0]}/{r['greedy'][1]} | {r['milp'][0]}/{r['milp'][1]} | "
              f"{r['optimum'][0]}/{r['optimum'][1]} | {r['milp_optimal']} | {r['milp_s']:.2f} | "
              f"{r['exhaustive_s']:.2f} | {r['gib'][0]:.0f} / {r['gib'][1]:.0f} / {r['gib'][2]:.0f} |")
    n = len(small)
    print(f"\nMILP = optimum (placed and quality): {sum(r['milp'] == r['optimum'] for r in small)}/{n}; "
          f"greedy = optimum: {sum(r['greedy'] == r['optimum'] for r in small)}/{n}; "
          f"greedy placed fewer: {sum(r['greedy'][0] < r['optimum'][0] for r in small)}/{n}; "
          f"replicas placed: greedy {sum(r['greedy'][0] for r in small)}, "
          f"MILP {sum(r['milp'][0] for r in small)}, optimum {sum(r['optimum'][0] for r in small)}; "
          f"median MILP {statistics.median(r['milp_s'] for r in small):.2f} s\n")
    medium = run_medium(range(10))
    print("## Medium instances (8 nodes, 24 models; MILP 20 s limit, greedy warm start)\n")
    print("| seed | GPUs | candidates | greedy placed/quality | MILP placed/quality | MILP optimal | "
          "MILP s | GiB greedy / MILP |")
    print("|---|---|---|---|---|---|---|---|")
    for r in medium:
        print(f"| {r['seed']} | {r['gpus']} | {r['candidates']} | {r['greedy'][0]}/{r['greedy'][1]} | "
              f"{r['milp'][0]}/{r['milp'][1]} | {r['milp_optimal']} | {r['milp_s']:.2f} | "
              f"{r['gib'][0]:.0f} / {r['gib'][1]:.0f} |")
    print(f"\nreplicas placed: greedy {sum(r['greedy'][0] for r in medium)}, "
          f"MILP {sum(r['milp'][0] for r in medium)}; MILP better on "
          f"{sum(r['milp'] > r['greedy'] for r in medium)}/{len(medium)}")


if __name__ == "__main__":
    main()
