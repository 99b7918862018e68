# Copyright (c) teamllm.stack developers
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""HiGHS, one instance per solve, every status checked.

``highspy`` is optional: :func:`load` returns None without it. A :class:`Solver` owns one
``highspy.Highs`` with its own options (threads, seed, silent) and keeps HiGHS's error lines
from its log, so a failure is reported with HiGHS's own words. HiGHS's thread scheduler is
global to the process: a process that ran HiGHS with another thread count before makes
``run()`` fail ("the scheduler has already been initialized to use 2 threads"), so each run
resets it first (the controller runs one placement at a time per process).
"""

from __future__ import annotations

import os
import sys

from ansible_collections.teamllm.stack.plugins.module_utils._placement._numpy import np

_BANNER_SHOWN = False
# Model statuses after which the solution (if feasible) is usable but not proven optimal.
_LIMITS = ("kTimeLimit", "kIterationLimit", "kSolutionLimit", "kInterrupt", "kHighsInterrupt",
           "kObjectiveBound", "kObjectiveTarget")


class SolverError(RuntimeError):
    """HiGHS refused the model or failed to run; the message quotes its status."""


def load():
    """The ``highspy`` module, or None when it is not installed."""
    try:
        import highspy  # optional: imported when needed
    except ImportError:
        return None
    return highspy


def _new(highspy):
    """``highspy.Highs()``; its banner goes to fd 1 the first time, kept off the output."""
    global _BANNER_SHOWN
    if _BANNER_SHOWN:
        return highspy.Highs()
    try:
        sys.stdout.flush()
        saved = os.dup(1)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        try:
            solver = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(null)
    except OSError:
        solver = highspy.Highs()
    _BANNER_SHOWN = True
    return solver


class Solver:
    """One HiGHS instance: ``load_model``, ``start``, ``run``, then read the outcome."""

    def __init__(self, highspy, threads=1, seed=0, options=()):
        self.hs = highspy
        self.threads = int(threads)
        self.highs = _new(highspy)
        self.errors = []
        # HiGHS logs only through the callback: nothing reaches the console
        for name, value in (("output_flag", True), ("log_to_console", False),
                            ("threads", self.threads), ("random_seed", int(seed)),
                            *options):
            self._check(self.highs.setOptionValue(name, value), f"setting option {name}")
        self.highs.cbLogging.subscribe(self._log)

    def _log(self, event):
        text = str(getattr(event, "message", "")).strip()
        if text.startswith(("ERROR", "WARNING")) and len(self.errors) < 5:
            self.errors.append(" ".join(text.split()))

    def _check(self, status, what):
        if status == self.hs.HighsStatus.kError:
            detail = f": {'; '.join(self.errors)}" if self.errors else ""
            raise SolverError(f"HiGHS returned Error {what}{detail}")
        return status

    def load_model(self, cost, lower, upper, row_lower, row_upper, start, index, value,
                   integral, maximize=True):
        """Pass the model column-wise (CSC) as numpy arrays."""
        n_col, n_row = len(cost), len(row_lower)
        integrality = np.asarray(integral, dtype=np.int32)
        self._check(self.highs.passModel(
            n_col, n_row, len(index), 1, -1 if maximize else 1, 0.0,
            np.asarray(cost, dtype=np.float64), np.asarray(lower, dtype=np.float64),
            np.asarray(upper, dtype=np.float64), np.asarray(row_lower, dtype=np.float64),
            np.asarray(row_upper, dtype=np.float64), np.asarray(start, dtype=np.int32),
            np.asarray(index, dtype=np.int32), np.asarray(value, dtype=np.float64),
            integrality), "loading the model")

    def start(self, values):
        """Offer a feasible solution as the starting point; False when HiGHS rejects it."""
        solution = self.hs.HighsSolution()
        solution.col_value = [float(v) for v in values]
        solution.value_valid = True
        try:
            return self.highs.setSolution(solution) != self.hs.HighsStatus.kError
        except (RuntimeError, ValueError, TypeError):
            return False

    def run(self, seconds):
        """Solve within ``seconds``; return an :class:`Outcome`. Raises SolverError when
        HiGHS fails (run status Error, or a model status that is neither a solution nor a
        limit)."""
        self.errors.clear()
        self._check(self.highs.setOptionValue("time_limit", max(0.01, float(seconds))),
                    "setting option time_limit")
        self.hs.Highs.resetGlobalScheduler(True)
        status = self.highs.run()
        model = self.highs.getModelStatus()
        name = model.name if hasattr(model, "name") else str(model)
        text = self.highs.modelStatusToString(model)
        if status == self.hs.HighsStatus.kError or name not in ("kOptimal", *_LIMITS):
            detail = f": {'; '.join(self.errors)}" if self.errors else ""
            raise SolverError(f"HiGHS run() returned {status.name[1:]} with model status "
                              f"{text}{detail}")
        info = self.highs.getInfo()
        feasible = info.primal_solution_status == self.hs.SolutionStatus.kSolutionStatusFeasible
        values = np.asarray(self.highs.getSolution().col_value) if feasible else None
        return Outcome(name == "kOptimal", text, values, _number(info, "mip_dual_bound"),
                       _number(info, "objective_function_value") if feasible else None,
                       _number(info, "mip_gap"))

    def add_row(self, lower, upper, index, value):
        self._check(self.highs.addRow(float(lower), float(upper), len(index),
                                      np.asarray(index, dtype=np.int32),
                                      np.asarray(value, dtype=np.float64)), "adding a row")

    def change_costs(self, cost):
        n = len(cost)
        self._check(self.highs.changeColsCost(n, np.arange(n, dtype=np.int32),
                                              np.asarray(cost, dtype=np.float64)),
                    "changing the costs")


def _number(info, name):
    value = getattr(info, name, None)
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) and abs(value) < 1e30 else None


class Outcome:
    """What one run gave: proven optimal or not, HiGHS's model status, the column values
    (None when no feasible solution), the dual bound, the objective and the gap."""

    def __init__(self, optimal, status, values, bound, objective, gap):
        self.optimal = optimal
        self.status = status
        self.values = values
        self.bound = bound
        self.objective = objective
        self.gap = gap
