"""Unit tests for _placement.relax: the class relaxation bounds every plan, and its
suggested packing; _placement.sparse: the model's column-wise arrays."""

from __future__ import annotations

import random

import numpy as np
import pytest

from ansible_collections.teamllm.stack.plugins.module_utils import _placement as P
from ansible_collections.teamllm.stack.plugins.module_utils._placement import highs as H
from ansible_collections.teamllm.stack.plugins.module_utils._placement import relax as R
from ansible_collections.teamllm.stack.plugins.module_utils._placement import sparse as S
from ansible_collections.teamllm.stack.tests.unit.plugins.module_utils.test__placement import (
    Fake,
    gpus,
)
from ansible_collections.teamllm.stack.tests.unit.plugins.module_utils.test__placement_candidates import (
    build,
)


def lp_bound(types, cluster):
    bound, y, status = R.solve(H.Solver(H.load()), types, cluster, 10)
    assert status == "Optimal"
    return bound, y


def optimum(types, cluster):
    """Best score of any plan, by exhaustive search (one replica per model)."""
    reqs, tids, groups = types.expand(cluster)
    options = [[] for _ in types.requests]
    for r, t, g in zip(reqs.tolist(), tids.tolist(), groups.tolist(), strict=True):
        options[r].append((t, cluster.group_devs[g]))
    free = cluster.capacity.copy()
    best = [0]

    def dfs(r, score):
        if r == len(options):
            best[0] = max(best[0], score)
            return
        for t, devs in options[r]:
            claims = types.claims[t][:len(devs)]
            if all(free[k] >= c for k, c in zip(devs, claims, strict=True)):
                free[list(devs)] -= claims
                dfs(r + 1, score + types.weight + int(types.rank[t]))
                free[list(devs)] += claims
        dfs(r + 1, score)

    dfs(0, 0)
    return best[0]


@pytest.mark.parametrize("seed", range(8))
def test_bound_holds_for_every_plan_and_the_exact_solver_reaches_the_optimum(seed):
    rng = random.Random(seed)
    hosts = {f"h{i}": {"gpus": gpus(*rng.choices([8, 11, 12, 24], k=rng.randint(1, 2)))}
             for i in range(3)}
    models = [{"name": rng.choice(["m32", "big", "ctx"]), "alias": f"x{i}",
               "quantizations": rng.choice([["Q8_0", "Q4_K_M"], ["Q4_K_M"], ["F16", "Q8_0"]])}
              for i in range(6)]
    _, cluster, types = build(models, hosts, reserve=1)
    bound, _ = lp_bound(types, cluster)
    best = optimum(types, cluster)
    assert bound >= best
    assert R.trivial_bound(types) >= best
    result = P.plan(models, hosts, estimator=Fake(), reserve_gib=1, allow_partial=True)
    assert result["placed"] * types.weight + result["quality"] == best
    assert result["bound"] >= result["placed"]


def test_large_items_cannot_share_a_device_in_the_bound():
    # three 13 GiB models on two hosts of one 24 GiB GPU: memory alone (39 <= 48) would
    # allow all three
    models = [{"name": "s13", "alias": f"x{i}", "quantizations": ["Q4_K_M"]} for i in range(3)]
    _, cluster, types = build(models, {"a": {"gpus": gpus(24)}, "b": {"gpus": gpus(24)}},
                              fake=Fake({"s13": 13}))
    bound, _ = lp_bound(types, cluster)
    assert bound // types.weight == 2


def test_replicas_of_one_model_need_distinct_devices_in_the_bound():
    models = [{"name": "m32", "quantizations": ["Q4_K_M"], "replicas": 3}]
    _, cluster, types = build(models, {"a": {"gpus": gpus(48, 48)}})
    bound, _ = lp_bound(types, cluster)
    assert bound // types.weight == 2


def test_guided_items_put_what_the_lp_places_first_biggest_first():
    sizes = {"s2": 2, "s9": 9, "s20": 20}
    models = [{"name": n, "quantizations": ["Q4_K_M"]} for n in sizes]
    _, cluster, types = build(models, {"a": {"gpus": gpus(24)}}, fake=Fake(sizes))
    _, y = lp_bound(types, cluster)
    items, _ = R.guided_items(types, y)
    names = [types.requests[r].model for r, _ in items]
    placed = [types.requests[types.members[types.profile[t]][0]].model
              for t in range(len(y)) if y[t] > 0.5]
    assert names[:len(placed)] == sorted(placed, key=lambda n: -sizes[n])
    assert sorted(names) == sorted(sizes)


def test_sparse_model_sums_duplicates_and_is_column_wise():
    model = S.Model()
    model.columns([1.0, 2.0, 3.0], 0.0, 1.0, integral=True)
    first = model.rows(-np.inf, [4.0, 5.0])
    model.add([0, 0, 2, 1], [first, first, first + 1, first + 1], [1.0, 2.0, 5.0, 0.0])
    cost, lower, upper, row_lower, row_upper, start, index, value, integral = model.arrays()
    dense = np.zeros((2, 3))
    for c in range(3):
        for i in range(start[c], start[c + 1]):
            dense[index[i], c] += value[i]
    assert dense.tolist() == [[3.0, 0.0, 0.0], [0.0, 0.0, 5.0]]
    assert start.tolist() == [0, 1, 1, 2]  # the explicit zero is dropped
    assert row_upper.tolist() == [4.0, 5.0] and integral.tolist() == [1, 1, 1]


@pytest.mark.parametrize("seed", range(8))
def test_packing_bound_never_exceeds_a_proven_optimal_packing(seed):
    rng = random.Random(100 + seed)
    hosts = {f"h{i}": {"gpus": gpus(*rng.choices([12, 16, 24], k=rng.randint(1, 3)))}
             for i in range(4)}
    models = [{"name": rng.choice(["m32", "ctx"]), "alias": f"x{i}",
               "quantizations": ["Q8_0", "Q4_K_M"], "replicas": rng.randint(1, 2)}
              for i in range(5)]
    _, cluster, types = build(models, hosts, reserve=1)
    result = P.plan(models, hosts, estimator=Fake(), reserve_gib=1, allow_partial=True)
    assert result["optimal"]
    used = [(h, d["index"]) for h, spec in result["placement"].items() for d in spec["devices"]
            if d["instances"]]
    value = len({h for h, _ in used}) * R._host_weight(cluster) + len(used)
    score = result["placed"] * types.weight + result["quality"]
    bound = R.packing_bound(H.Solver(H.load()), types, cluster, score, 10)
    assert bound is not None and bound <= value


def test_repack_keeps_every_replica_and_its_quality_on_fewer_hosts():
    from ansible_collections.teamllm.stack.plugins.module_utils._placement import greedy as G

    models = [{"name": "m32", "alias": f"x{i}", "quantizations": ["Q4_K_M"]} for i in range(4)]
    hosts = {"a": {"gpus": gpus(8)}, "b": {"gpus": gpus(8)}, "c": {"gpus": gpus(24)}}
    _, cluster, types = build(models, hosts)
    spread = G.greedy(types, cluster, "spread")
    repacked = G.repack(types, cluster, spread)
    assert sorted((r, types.quality[t]) for r, t, _ in repacked) == sorted(
        (r, types.quality[t]) for r, t, _ in spread)
    assert R.packing_value(types, cluster, repacked) < R.packing_value(types, cluster, spread)
    assert {cluster.devices[cluster.group_devs[g][0]].host for _, _, g in repacked} == {"c"}
