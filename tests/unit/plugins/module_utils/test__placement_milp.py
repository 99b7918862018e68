"""Unit tests for _placement.milp: the per-GPU model's rows hold for real plans, and the
packing stage improves on the greedy."""

from __future__ import annotations

import random

import numpy as np
import pytest

from ansible_collections.teamllm.stack.plugins.module_utils import _placement as P
from ansible_collections.teamllm.stack.plugins.module_utils._placement import greedy as G
from ansible_collections.teamllm.stack.plugins.module_utils._placement import milp as M
from ansible_collections.teamllm.stack.tests.unit.plugins.module_utils.test__placement import (
    Fake,
    gpus,
)
from ansible_collections.teamllm.stack.tests.unit.plugins.module_utils.test__placement_candidates import (
    build,
)


def activity(problem, values):
    _, lower, upper, row_lower, row_upper, start, index, value, _ = problem.model.arrays()
    rows = np.zeros(problem.model.n_row)
    for c in range(problem.model.n_col):
        sl = slice(start[c], start[c + 1])
        np.add.at(rows, index[sl], value[sl] * values[c])
    return rows, row_lower, row_upper, lower, upper


@pytest.mark.parametrize("policy", ["binpack", "spread"])
@pytest.mark.parametrize("seed", range(5))
def test_a_greedy_plan_is_a_feasible_point_of_the_model(policy, seed):
    rng = random.Random(seed)
    hosts = {f"h{i}": {"gpus": gpus(*rng.choices([12, 16, 24], k=rng.randint(1, 3)))}
             for i in range(3)}
    models = [{"name": rng.choice(["m32", "big", "ctx"]), "alias": f"x{i}",
               "quantizations": ["Q8_0", "Q4_K_M"], "replicas": rng.randint(1, 3)}
              for i in range(6)]
    _, cluster, types = build(models, hosts, reserve=1)
    plan = G.greedy(types, cluster, policy)
    problem = M.Problem(types, cluster, policy)
    values = problem.values(plan)
    rows, row_lower, row_upper, lower, upper = activity(problem, values)
    assert np.all(rows <= row_upper + 1e-6) and np.all(rows >= row_lower - 1e-6)
    assert np.all(values >= lower) and np.all(values <= upper)
    assert sorted(problem.chosen(values)) == sorted(plan)
    assert problem.primary[:problem.n_x] @ values[:problem.n_x] == types.score(plan)[2]


def test_a_plan_breaking_a_row_is_caught():
    models = [{"name": "m32", "alias": a, "engine": "llama_cpp", "quantizations": ["Q8_0"]}
              for a in ("x", "y", "z")]
    _, cluster, types = build(models, {"a": {"gpus": gpus(20)}})
    problem = M.Problem(types, cluster, "binpack")
    crowded = [(r, types.of(r)[0], 0) for r in range(3)]  # 24 GiB on a 20 GiB GPU
    rows, _, row_upper, _, _ = activity(problem, problem.values(crowded))
    assert np.any(rows > row_upper + 1e-6)


def test_binpack_stage_frees_a_whole_host_the_greedy_used():
    # greedy: the first 16 GiB model takes a's GPU, the second does not fit beside it and
    # opens b; the optimum puts both on b's two GPUs and leaves a empty
    models = [{"name": "s16", "alias": a, "quantizations": ["Q4_K_M"]} for a in ("x", "y")]
    hosts = {"a": {"gpus": gpus(24)}, "b": {"gpus": gpus(24, 24)}}
    fake = Fake({"s16": 16})
    greedy = P.plan(models, hosts, estimator=fake, solver="greedy", reserve_gib=0)
    assert all(spec["instances"] for spec in greedy["placement"].values())
    exact = P.plan(models, hosts, estimator=fake, reserve_gib=0)
    assert exact["solver"] == "highs" and exact["optimal"]
    assert exact["placement"]["a"]["instances"] == []
    assert "stage 2 (binpack): Optimal" in exact["solver_status"]
