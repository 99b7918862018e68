"""Unit tests for _placement.highs: one HiGHS per solve, statuses checked, HiGHS's own words
when it fails, and a second solve in one process with another thread count."""

from __future__ import annotations

import numpy as np
import pytest

from ansible_collections.teamllm.stack.plugins.module_utils import _placement as P
from ansible_collections.teamllm.stack.plugins.module_utils._placement import highs as H
from ansible_collections.teamllm.stack.tests.unit.plugins.module_utils.test__placement import (
    Fake,
    gpus,
)

highspy = pytest.importorskip("highspy")

# greedy: Q8_0 for x, nothing left for y; the optimum is Q4_K_M twice, found only by the MILP
MODELS = [{"name": "m32", "alias": a, "engine": "llama_cpp", "quantizations": ["Q8_0", "Q4_K_M"]}
          for a in ("x", "y")]
HOSTS = {"a": {"gpus": gpus(11)}}


def knapsack(threads):
    """A two-item knapsack through the wrapper: the best is item 1 alone."""
    solver = H.Solver(highspy, threads)
    solver.load_model([3.0, 4.0], [0, 0], [1, 1], [-np.inf], [5.0], [0, 1, 2], [0, 0],
                      [3.0, 4.0], [1, 1])
    return solver.run(5)


def raw_solve(threads, first=True):
    """A one-column MIP through highspy itself, with ``threads`` set: its run status.
    ``first``: as the first HiGHS user of the process (the scheduler starts afresh)."""
    if first:
        highspy.Highs.resetGlobalScheduler(True)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", threads)
    h.passModel(1, 1, 1, 1, -1, 0.0, np.array([1.0]), np.array([0.0]), np.array([1.0]),
                np.array([-highspy.kHighsInf]), np.array([0.5]), np.array([0, 1], dtype=np.int32),
                np.array([0], dtype=np.int32), np.array([1.0]), np.array([1], dtype=np.int32))
    return h.run()


def test_two_solves_in_one_process_with_other_thread_counts():
    # the failure this guards against is real: highspy alone refuses the second thread count
    assert raw_solve(2) == highspy.HighsStatus.kOk
    assert raw_solve(1, first=False) == highspy.HighsStatus.kError
    for threads in (2, 1, 2):
        outcome = knapsack(threads)
        assert outcome.optimal and outcome.status == "Optimal"
        assert outcome.values.round().tolist() == [0.0, 1.0]


def test_plan_after_another_highs_user_in_the_process_is_still_solved_exactly():
    raw_solve(2)  # someone else initialised HiGHS's scheduler with two threads
    result = P.plan(MODELS, HOSTS, estimator=Fake(), reserve_gib=0, threads=1)
    assert result["solver"] == "highs" and result["optimal"]
    assert "failed" not in result["solver_status"]


def test_a_failed_run_is_reported_in_highs_words_and_the_greedy_plan_says_why(monkeypatch):
    raw_solve(2)
    # without the reset HiGHS refuses to run with one thread: the failure must surface
    monkeypatch.setattr(highspy.Highs, "resetGlobalScheduler", staticmethod(lambda blocking: None))
    with pytest.raises(H.SolverError, match="scheduler has already been initialized"):
        knapsack(1)
    result = P.plan(MODELS, HOSTS, estimator=Fake(), reserve_gib=0, allow_partial=True, threads=1)
    assert result["solver"] == "greedy" and not result["optimal"]
    assert "HiGHS run() returned Error" in result["fallback_reason"]
    assert "scheduler has already been initialized" in result["fallback_reason"]
    assert result["placed"] == 1 and result["bound"] == 2  # the trivial bound still holds


def test_a_fake_failing_highs_gives_its_status_as_the_fallback_reason(monkeypatch):
    def refuse(self, seconds):
        raise H.SolverError("HiGHS run() returned Error with model status Solve error")

    monkeypatch.setattr(H.Solver, "run", refuse)
    result = P.plan(MODELS, HOSTS, estimator=Fake(), reserve_gib=0, allow_partial=True)
    assert result["solver"] == "greedy" and not result["optimal"]
    assert result["fallback_reason"] == "HiGHS run() returned Error with model status Solve error"
    assert result["solver_status"].endswith("failed: HiGHS run() returned Error with model "
                                            "status Solve error")


def test_an_unusable_model_status_is_an_error_not_a_plan():
    solver = H.Solver(highspy, 1)
    # x >= 2 with x <= 1: infeasible
    solver.load_model([1.0], [0.0], [1.0], [2.0], [np.inf], [0, 1], [0], [1.0], [0])
    with pytest.raises(H.SolverError, match="Infeasible"):
        solver.run(5)


def test_an_optimal_outcome_carries_its_bound_and_objective():
    outcome = knapsack(1)
    assert outcome.bound == pytest.approx(4.0) and outcome.objective == pytest.approx(4.0)
