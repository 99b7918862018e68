"""Unit tests for _placement.solve: what the exact solver says it did is what happened."""

from __future__ import annotations

import random

import pytest

from ansible_collections.teamllm.stack.plugins.module_utils import _placement as P
from ansible_collections.teamllm.stack.plugins.module_utils._placement import highs as H
from ansible_collections.teamllm.stack.plugins.module_utils._placement import milp as M
from ansible_collections.teamllm.stack.tests.unit.plugins.module_utils.test__placement import (
    Fake,
    gpus,
)
from ansible_collections.teamllm.stack.tests.unit.plugins.module_utils.test__placement_highs import (
    HOSTS,
    MODELS,
)

pytest.importorskip("highspy")


def plan(models, hosts, **kwargs):
    kwargs.setdefault("reserve_gib", 0)
    return P.plan(models, hosts, estimator=Fake(), allow_partial=True, **kwargs)


def test_greedy_at_the_bound_is_optimal_and_says_so():
    result = plan([{"name": "m32", "quantizations": ["Q8_0"]}], {"a": {"gpus": gpus(24)}})
    assert result["optimal"] and result["gap"] == 0.0 and result["bound"] == 1
    assert "greedy reached the bound" in result["solver_status"]
    assert "stage 2 (binpack): Optimal" in result["solver_status"]


def test_a_model_that_fits_no_gpu_is_explained_not_blamed_on_the_solver():
    result = plan([{"name": "huge", "engine": "llama_cpp", "quantizations": ["Q4_K_M"]},
                   {"name": "m32", "quantizations": ["Q4_K_M"]}], {"a": {"gpus": gpus(24)}})
    assert result["placed"] == 1 and result["optimal"]
    assert "Empty" not in result["solver_status"] and "Empty" not in (result["fallback_reason"] or "")
    (entry,) = result["unplaced"]
    assert "even with nothing else on it" in entry["message"]


def test_nothing_fits_at_all_is_nothing_to_solve():
    result = plan([{"name": "huge", "engine": "llama_cpp", "quantizations": ["Q4_K_M"]}],
                  {"a": {"gpus": gpus(24)}})
    assert result["placed"] == 0 and result["bound"] == 0
    assert result["solver_status"].startswith("nothing to solve")
    assert "no candidate placement" in result["fallback_reason"]


def test_no_time_left_is_a_time_limit_not_a_silent_greedy():
    result = plan(MODELS, HOSTS, time_limit=1e-9)
    assert result["solver"] == "greedy" and not result["optimal"]
    assert result["fallback_reason"] == "time limit: no time left for the class relaxation"
    assert result["bound"] == 2 and result["gap"] == 0.5


def test_over_max_candidates_the_relaxation_still_bounds_the_plan():
    # no MILP at all: the LP-guided packing lowers both models to fit, reaching the class
    # bound; one host and one GPU reach the packing bound too, so both stages are proven
    result = plan(MODELS, HOSTS, max_candidates=0)
    assert result["solver"] == "lp-guided" and result["optimal"]
    assert "max_candidates 0" in result["fallback_reason"]
    assert "relaxation: Optimal" in result["solver_status"]
    assert "optimal (it reached the class bound)" in result["solver_status"]
    assert result["bound"] == 2 and result["placed"] == 2 and result["gap"] == 0.0
    assert result["packing_gap"] == 0.0


def test_a_packing_short_of_its_bound_is_not_called_optimal():
    # three 10 GiB models, hosts of one 24 GiB GPU: two hosts (objective 2 x 2 + 2 = 6) is
    # the best, but the LP bound only proves 5 (1.5 hosts and GPUs: at most two models
    # above a third of a GPU on one)
    models = [{"name": "s10", "alias": f"x{i}", "quantizations": ["Q4_K_M"]} for i in range(3)]
    hosts = {f"h{i}": {"gpus": gpus(24)} for i in range(3)}
    result = P.plan(models, hosts, estimator=Fake({"s10": 10}), reserve_gib=0,
                    max_candidates=0)
    assert len([h for h, spec in result["placement"].items() if spec["instances"]]) == 2
    assert not result["optimal"] and result["gap"] == 0.0
    assert result["packing_gap"] == pytest.approx(1 / 6, abs=1e-6)
    assert "gap 16.67% to the class bound" in result["solver_status"]
    assert "max_candidates 0" in result["fallback_reason"]
    # with the MILP allowed, HiGHS proves the same packing optimal
    exact = P.plan(models, hosts, estimator=Fake({"s10": 10}), reserve_gib=0)
    assert exact["optimal"] and exact["placement"] == result["placement"]


def test_a_milp_stopped_by_its_time_limit_reports_the_gap(monkeypatch):
    def stopped(solver, problem, start, seconds, floor=None):
        return H.Outcome(False, "Time limit reached", start, 1e9, None, None), problem.chosen(start)

    monkeypatch.setattr(M, "stage", stopped)
    # the greedy places one of two; the other packings are kept away: only the MILP may help
    monkeypatch.setattr(P._solve._relax, "guided_items", lambda types, y: ([], {}))
    monkeypatch.setattr(P._solve._relax, "smallest_first_items", lambda types: [])
    result = plan(MODELS, HOSTS)
    assert not result["optimal"] and result["solver"] == "greedy"
    assert "stage 1: Time limit reached, gap 1 of 2 replicas (50.00%)" in result["solver_status"]
    assert "found nothing better" in result["fallback_reason"]


@pytest.mark.parametrize("policy", ["binpack", "spread"])
@pytest.mark.parametrize("seed", range(6))
def test_the_bound_and_gaps_are_consistent(policy, seed):
    rng = random.Random(seed)
    hosts = {f"h{i}": {"gpus": gpus(*rng.choices([8, 12, 24], k=rng.randint(1, 2)))}
             for i in range(3)}
    models = [{"name": rng.choice(["m32", "big", "ctx"]), "alias": f"x{i}",
               "quantizations": ["Q8_0", "Q4_K_M"], "replicas": rng.randint(1, 2)}
              for i in range(6)]
    result = plan(models, hosts, policy=policy, reserve_gib=1)
    assert result["placed"] <= result["bound"] <= result["wanted"]
    assert result["gap"] == pytest.approx((result["bound"] - result["placed"]) / result["bound"])
    if result["optimal"]:
        assert result["gap"] == 0.0 and result["quality_gap"] == 0.0
        assert result["solver"] == "highs" or "reached" in result["fallback_reason"]
    else:
        assert result["solver"] == "highs" or result["fallback_reason"]
    greedy = plan(models, hosts, policy=policy, reserve_gib=1, solver="greedy")
    assert greedy["placed"] <= result["bound"]
    assert (greedy["placed"], greedy["quality"]) <= (result["placed"], result["quality"])
