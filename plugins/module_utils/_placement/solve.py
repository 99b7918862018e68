# Copyright (c) teamllm.stack developers
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The exact solver: bound, better packings, MILP stages, and what happened, said truthfully.

1. **Bound**: every replica at its best type (trivial); when the greedy's plan falls short of
   it, the class relaxation (:mod:`relax`) gives a tighter one.
2. When the plan still falls short: two packings from the relaxation (LP-guided, smallest
   first), then (up to ``max_candidates`` per-GPU candidates) the per-GPU MILP's stage 1 from
   the best plan so far; HiGHS's dual bound tightens the bound.
3. Stage 2 (packing), once stage 1 is proven: binpack repacks host by host; then the MILP on
   the candidates that can keep the stage-1 score, or beyond ``max_candidates`` the packing
   measured against the relaxation's lower bound.

A plan is ``optimal`` only when its score reaches the bound and stage 2 is proven. Every step
runs against one deadline (``time_limit`` from the start of ``plan``); any HiGHS failure
(:class:`highs.SolverError`) ends the solve with the best plan so far and HiGHS's words.
"""

from __future__ import annotations

import time

from ansible_collections.teamllm.stack.plugins.module_utils._placement import greedy as _greedy
from ansible_collections.teamllm.stack.plugins.module_utils._placement import highs as _highs
from ansible_collections.teamllm.stack.plugins.module_utils._placement import milp as _milp
from ansible_collections.teamllm.stack.plugins.module_utils._placement import relax as _relax

# HiGHS checks its time limit only now and then: it gets the time left minus this fraction
# of the time limit (at least 30 ms, at most 1 s), also enough to build the result.
_MARGIN = 0.1
_MIN_RUN = 0.02  # below this, HiGHS is not started
# The optimality gaps HiGHS runs with, in every MILP stage.
_MIP_GAPS = (("mip_rel_gap", 0.0), ("mip_abs_gap", 0.5))


class Report:
    """The exact solver's account: stages, bound, gaps, and the plan's origin."""

    def __init__(self, types, deadline, time_limit):
        self.types, self.deadline = types, deadline
        self.margin = min(1.0, max(0.03, _MARGIN * time_limit))
        self.stages, self.reasons = [], []
        self.source = "greedy"
        self.bound = None
        self.stage1_proven = False
        self.packing_proven = False
        self.packing_gap = None
        self.solver_seconds = 0.0
        self.best = []
        self.repacked = False  # binpack's stage 2 repacked the plan host by host
        self.problem = self.solver = None  # the per-GPU MILP, when stage 1 built it

    def left(self):
        return self.deadline - self.margin - time.monotonic()

    def top_ranks(self):
        """Each replica's best rank, highest first."""
        types = self.types
        ranks = []
        for r, req in enumerate(types.requests):
            ids = types.of(r)
            if ids:
                ranks += [int(types.rank[ids].max())] * req.replicas
        return sorted(ranks, reverse=True)

    def plan_by(self):
        return self.source + ("+repack" if self.repacked and self.source != "milp" else "")

    def gap_text(self, chosen):
        meta = self.meta(chosen)
        if meta["gap"]:
            return f"gap {meta['bound'] - len(chosen)} of {meta['bound']} replicas ({meta['gap']:.2%})"
        return f"quality gap {meta['quality_gap'] or 0:.2%}"

    def meta(self, chosen):
        placed, quality, score = self.types.score(chosen)
        weight = self.types.weight
        bound = quality_bound = gap = quality_gap = None
        if self.bound is not None:
            # score = replicas x weight + quality ranks, and quality < weight: the bound
            # caps the replicas, and the quality of a plan placing that many
            bound, quality_bound = divmod(max(self.bound, score), weight)
            # nor can `bound` replicas beat the best rank of each of the `bound` best ones
            quality_bound = max(quality, min(quality_bound, sum(self.top_ranks()[:bound])))
            gap = round((bound - placed) / bound, 6) if bound else 0.0
            if placed == bound:
                quality_gap = round((quality_bound - quality) / quality_bound, 6) \
                    if quality_bound else 0.0
        return {
            "solver": "highs" if self.source == "milp" else self.plan_by(),
            "solver_status": "; ".join(self.stages),
            "optimal": bool(self.stage1_proven and self.packing_proven),
            "fallback_reason": "; ".join(self.reasons) if self.source != "milp" else None,
            "bound": bound,
            "gap": gap,
            "quality": quality,
            "quality_bound": quality_bound if placed == bound else None,
            "quality_gap": quality_gap,
            "packing_gap": self.packing_gap,
            "solver_seconds": round(self.solver_seconds, 4),
        }


def exact(types, cluster, policy, start, deadline, time_limit, max_candidates, highspy,
          threads=1):
    """Improve on the greedy's plan ``start`` by ``deadline``; return (plan, meta)."""
    report = Report(types, deadline, time_limit)
    report.best = list(start)
    if not len(types.profile):
        report.bound, report.stage1_proven, report.packing_proven = 0, True, True
        report.stages.append("nothing to solve: no model fits any GPU group or RAM")
        report.reasons.append("no candidate placement: nothing for HiGHS to solve")
        return report.best, report.meta(report.best)
    report.bound = _relax.trivial_bound(types)
    if highspy is None:
        report.reasons.append("highspy is not installed")
    try:
        _stage1(report, types, cluster, policy, max_candidates, highspy, threads)
        _stage2(report, types, cluster, policy, max_candidates, highspy, threads)
    except _highs.SolverError as exc:
        report.stages.append(f"failed: {exc}")
        report.reasons.append(str(exc))
        report.packing_proven = False
    return report.best, report.meta(report.best)


def _timed(report, fn, *args):
    started = time.monotonic()
    try:
        return fn(*args)
    finally:
        report.solver_seconds += time.monotonic() - started


def _stage1(report, types, cluster, policy, max_candidates, highspy, threads):
    best = report.best
    score = types.score(best)[2]
    if score >= report.bound:
        report.stage1_proven = True
        report.stages.append("stage 1: optimal (the greedy reached the bound: every replica "
                             "at its best option)")
        report.reasons.append("the greedy's plan reached the bound (every replica at its "
                              "best option)")
        return
    if highspy is None:
        report.stages.append("stage 1: not solved (highspy is not installed)")
        return
    if report.left() < _MIN_RUN:
        _out_of_time(report, "the class relaxation")
        return
    solver = _highs.Solver(highspy, threads)
    bound, y, status = _timed(report, _relax.solve, solver, types, cluster, report.left())
    if bound is None:
        report.stages.append(f"relaxation: {status}, no bound")
    else:
        report.bound = min(report.bound, bound)
        report.stages.append(f"relaxation: {status}, bound {report.bound // types.weight} "
                             "replicas")
        # two packings, each then upgraded: the LP's (its types tried first when upgrading)
        # and smallest first; the better one is kept
        for source, make in (("lp-guided", lambda: _relax.guided_items(types, y)),
                             ("smallest-first", lambda: (_relax.smallest_first_items(types),
                                                         None))):
            if report.left() < _MIN_RUN:
                _out_of_time(report, f"the {source} packing")
                break
            items, targets = make()
            packed, state = _greedy.pack(types, cluster, policy, items)
            packed = _greedy.upgrade(types, cluster, policy, packed, state, targets)
            if types.score(packed)[2] > score:
                best, score = packed, types.score(packed)[2]
                report.best, report.source = best, source
    if score >= report.bound:
        report.stage1_proven = True
        who = f"the {report.source} packing"
        report.stages.append(f"stage 1: optimal ({who} reached the bound)")
        report.reasons.append(f"{who}'s plan reached the class relaxation's bound")
        return
    count = types.count()
    if count > max_candidates:
        report.stages.append(f"stage 1: MILP not built ({count} candidate placements > "
                             f"max_candidates {max_candidates})")
        report.reasons.append(f"{count} candidate placements are more than max_candidates "
                              f"({max_candidates}) for the per-GPU MILP: the plan is the "
                              f"{report.source}'s, within the gap to the class bound")
        return
    if report.left() < _MIN_RUN:
        _out_of_time(report, "the MILP")
        return
    problem = _milp.Problem(types, cluster, policy)
    solver = _highs.Solver(highspy, threads, options=_MIP_GAPS)
    problem.model.load(solver)
    report.problem, report.solver = problem, solver
    outcome, plan = _timed(report, _milp.stage, solver, problem, problem.values(best),
                           0.7 * report.left())
    if outcome.bound is not None:
        report.bound = min(report.bound, int(outcome.bound + 1e-6 * abs(outcome.bound) + 1e-3))
    # HiGHS's plan is taken when better, or equal and proven (not the warm start handed back)
    if plan is not None and (types.score(plan)[2] > score or (
            outcome.optimal and types.score(plan)[2] >= score)):
        best, score = plan, types.score(plan)[2]
        report.best, report.source = plan, "milp"
    report.bound = max(report.bound, score)
    report.stage1_proven = outcome.optimal or score >= report.bound
    report.stages.append(f"stage 1: {outcome.status}" + ("" if report.stage1_proven else
                                                         f", {report.gap_text(best)}"))
    if report.source != "milp":
        report.reasons.append(f"HiGHS's MILP ({outcome.status}) found nothing better than "
                              f"the {report.source} plan")


def _out_of_time(report, what):
    report.stages.append(f"stopped: no time left for {what}")
    report.reasons.append(f"time limit: no time left for {what}")


def _stage2(report, types, cluster, policy, max_candidates, highspy, threads):
    label = f"stage 2 ({policy})"
    best = report.best
    if not report.stage1_proven:
        report.stages.append(f"{label}: not run (stage 1 not proven)")
        return
    if highspy is None:
        report.stages.append(f"{label}: not solved (highspy is not installed)")
        return
    score = types.score(best)[2]
    if policy == "binpack" and report.source != "milp" and report.left() >= _MIN_RUN:
        repacked = _greedy.repack(types, cluster, best)
        if repacked is not None and (_relax.packing_value(types, cluster, repacked)
                                     < _relax.packing_value(types, cluster, best)):
            report.best = best = repacked
            report.repacked = True
    problem = report.problem
    if problem is None:
        # every replica at its best type: only best-rank types can keep the score
        trivial = score >= _relax.trivial_bound(types)
        mask = None
        if trivial:
            top = {p: max((int(types.rank[t]) for _option, ts in types.by_option[p] for t in ts),
                          default=0) for p in range(len(types.members))}
            mask = types.rank == [top[int(p)] for p in types.profile]
        count = types.count(mask)
        if count > max_candidates:
            _packing_heuristic(report, types, cluster, policy, highspy, threads,
                               f"{count} candidate placements > max_candidates "
                               f"{max_candidates}")
            return
        if report.left() < _MIN_RUN:
            _out_of_time(report, label)
            return
        problem = _milp.Problem(types, cluster, policy, mask)
        report.solver = _highs.Solver(highspy, threads, options=_MIP_GAPS)
        problem.model.load(report.solver)
    if report.left() < _MIN_RUN:
        _out_of_time(report, label)
        return
    start = problem.values(best)
    outcome, plan = _timed(report, _milp.stage, report.solver, problem, start, report.left(),
                           score)
    if plan is not None and types.score(plan)[2] >= score and (
            start is None or outcome.optimal or problem.packing_value(outcome.values)
            > problem.packing_value(start) + 1e-9):
        report.best, report.source = plan, "milp"
        value = problem.packing_value(outcome.values)
    else:
        value = problem.packing_value(start) if start is not None else None
    report.packing_proven = outcome.optimal
    if outcome.bound is not None and value is not None:
        report.packing_gap = round(abs(outcome.bound - value) / max(1.0, abs(value)), 6)
    report.stages.append(f"{label}: {outcome.status}" + (
        "" if outcome.optimal or report.packing_gap is None else
        f", gap {report.packing_gap:.2%}"))
    if report.source != "milp":
        report.reasons.append(f"HiGHS's packing stage ({outcome.status}) found nothing better "
                              f"than the {report.plan_by()} packing")


def _packing_heuristic(report, types, cluster, policy, highspy, threads, why):
    """Stage 2 without the MILP: the plan's own packing, measured against the class
    relaxation's lower bound (binpack; spread has none)."""
    label = f"stage 2 ({policy})"
    text = f"{label}: the {report.plan_by()} packing, MILP not built ({why})"
    report.reasons.append(f"the packing is the {report.plan_by()}'s ({why})")
    if policy != "binpack" or report.left() < _MIN_RUN:
        report.stages.append(text + ("" if policy == "binpack" else ", no bound for spread"))
        return
    value = _relax.packing_value(types, cluster, report.best)
    solver = _highs.Solver(highspy, threads)
    bound = _timed(report, _relax.packing_bound, solver, types, cluster,
                   types.score(report.best)[2], report.left())
    if bound is None:
        report.stages.append(text + ", no bound")
        return
    report.packing_gap = round(max(0, value - bound) / value, 6) if value else 0.0
    report.packing_proven = value <= bound
    report.stages.append(text + (", optimal (it reached the class bound)" if
                                 report.packing_proven else
                                 f", gap {report.packing_gap:.2%} to the class bound"))
