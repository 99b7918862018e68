# Copyright (c) teamllm.stack developers
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Place model replicas on the GPUs of several hosts.

Private to the collection: pure Python with numpy (imported guarded, in ``_numpy``); ``highspy`` (HiGHS) is imported when the
exact solver runs, and without it the greedy's plan is used and the result says so.

Entry point: :func:`plan`. It takes plain data (what the action plugin reads from hostvars)
and returns plain data, so it is tested without Ansible. The memory estimator is injected
(any object with ``estimate`` and ``valid_tp_sizes`` as in ``_estimator``); by default the
collection's own is imported. The stages, one module each:

    inputs      models and hosts normalised (Request, Device, Host), constants, errors
    needs       options per request and the memory each takes (memoised estimates)
    candidates  device classes, GPU group shapes, candidate types per request profile
    greedy      best-fit / worst-fit packing, one replica at a time
    relax       the class relaxation: bound on every plan, and the packing it suggests
    sparse      a linear model from numpy triplets, handed to HiGHS column-wise
    highs       one HiGHS instance per solve, every status checked
    milp        the per-GPU MILP in two lexicographic stages
    solve       the exact solver: bound, packings, MILP stages, what happened and why
    explain     why a model does not fit, and the smallest change that does
    result      the plan as plain data
"""

from __future__ import annotations

import time

from ansible_collections.teamllm.stack.plugins.module_utils._placement import (
    _numpy,
)
from ansible_collections.teamllm.stack.plugins.module_utils._placement import (
    candidates as _candidates,
)
from ansible_collections.teamllm.stack.plugins.module_utils._placement import explain as _explain
from ansible_collections.teamllm.stack.plugins.module_utils._placement import greedy as _greedy
from ansible_collections.teamllm.stack.plugins.module_utils._placement import highs as _highs
from ansible_collections.teamllm.stack.plugins.module_utils._placement import needs as _needs
from ansible_collections.teamllm.stack.plugins.module_utils._placement import result as _result
from ansible_collections.teamllm.stack.plugins.module_utils._placement import solve as _solve
from ansible_collections.teamllm.stack.plugins.module_utils._placement.inputs import (
    DEFAULT_MAX_CANDIDATES,
    DEFAULT_RAM_RESERVE_GIB,
    DEFAULT_RESERVE_GIB,
    DEFAULT_TIME_LIMIT,
    GIB,
    POLICIES,
    SOLVERS,
    PlacementError,
    PlacementInputError,
    normalize_hosts,
    normalize_models,
)

__all__ = [
    "DEFAULT_MAX_CANDIDATES", "DEFAULT_RAM_RESERVE_GIB", "DEFAULT_RESERVE_GIB",
    "DEFAULT_TIME_LIMIT", "GIB", "POLICIES", "SOLVERS", "PlacementError",
    "PlacementInputError", "load_estimator", "normalize_hosts", "normalize_models", "plan",
]


def load_estimator():
    """The collection's estimator module (imported here so tests can inject a fake)."""
    from ansible_collections.teamllm.stack.plugins.module_utils import _estimator

    return _estimator


def _numbers(reserve_gib, ram_reserve_gib, time_limit, threads):
    try:
        values = (int(float(reserve_gib) * GIB), int(float(ram_reserve_gib) * GIB),
                  float(time_limit), int(threads))
    except (TypeError, ValueError) as exc:
        raise PlacementInputError(f"numeric option malformed: {exc}") from None
    if values[0] < 0 or values[1] < 0 or values[2] <= 0 or values[3] < 1:
        raise PlacementInputError("reserve_gib and ram_reserve_gib must be >= 0, time_limit > 0, "
                                  "threads >= 1")
    return values


def plan(models, hosts, policy="binpack", reserve_gib=DEFAULT_RESERVE_GIB, solver="auto",
         time_limit=DEFAULT_TIME_LIMIT, estimator=None, ram_reserve_gib=DEFAULT_RAM_RESERVE_GIB,
         allow_partial=False, max_candidates=DEFAULT_MAX_CANDIDATES, threads=1):
    """Place ``models`` on ``hosts``.

    ``models``: list of dicts (name, engine, quantizations, context, parallel, replicas, host,
    alias, flash_attention, kv_cache_type). ``hosts``: ``{name: {"gpus": teamllm_gpus facts,
    "cpu_inference": bool, "ram_bytes": int, "address": str}}``. ``time_limit`` bounds the
    whole solve (candidates, greedy, relaxation, MILP); ``threads`` is HiGHS's.

    Returns ``{"placement": {host: {"address", "instances", "devices"}}, "unplaced": [...],
    "solver", "solver_status", "optimal", "fallback_reason", "bound", "gap", "packing_gap",
    "policy", "seconds", "solver_seconds", "greedy_seconds", "candidates", "estimates",
    "placed", "wanted"}``. Raises :class:`PlacementError` when a replica does not fit (unless
    ``allow_partial``) and :class:`PlacementInputError` on malformed input.
    """
    started = time.monotonic()
    if _numpy.MISSING:
        raise PlacementInputError(_numpy.MISSING)
    if policy not in POLICIES:
        raise PlacementInputError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    if solver not in SOLVERS:
        raise PlacementInputError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    reserve, ram_reserve, time_limit, threads = _numbers(reserve_gib, ram_reserve_gib,
                                                         time_limit, threads)
    highspy = _highs.load() if solver != "greedy" else None
    if solver == "highs" and highspy is None:
        raise PlacementInputError("solver highs asked for but highspy is not installed")
    if estimator is None:
        estimator = load_estimator()
        # the collection's estimator sizes ggml types with the gguf package's tables
        from ansible_collections.teamllm.stack.plugins.module_utils._gguf_reader import MISSING

        if MISSING:
            raise PlacementInputError(MISSING)
    engines = tuple(getattr(estimator, "ENGINES", _needs.ENGINE_RANK))
    devices, host_map = normalize_hosts(hosts, reserve, ram_reserve)
    requests = normalize_models(models, set(host_map), engines)
    cluster = _candidates.Cluster(devices, host_map, {r.host for r in requests if r.host})
    needs = _needs.Needs(estimator)
    types = _candidates.Types(requests, cluster, needs, engines)

    greedy_started = time.monotonic()
    chosen = _greedy.greedy(types, cluster, policy)
    greedy_seconds = time.monotonic() - greedy_started
    if solver == "greedy":
        meta = {"solver": "greedy", "solver_status": "heuristic", "optimal": False,
                "fallback_reason": "greedy asked for", "bound": None, "gap": None,
                "quality": types.score(chosen)[1], "quality_bound": None,
                "quality_gap": None, "packing_gap": None, "solver_seconds": 0.0}
    else:
        chosen, meta = _solve.exact(types, cluster, policy, chosen, started + time_limit,
                                    time_limit, max_candidates, highspy, threads)
    counts = {}
    for r, _type, _group in chosen:
        counts[r] = counts.get(r, 0) + 1
    meta.update(policy=policy, greedy_seconds=round(greedy_seconds, 4), candidates=types.count(),
                estimates=needs.calls, placed=len(chosen), wanted=types.total_replicas)
    meta["seconds"] = round(time.monotonic() - started, 4)
    ctx = _explain.Context(cluster, needs, engines, estimator, requests, policy, counts)
    lines, unplaced = _explain.explain(ctx, lambda r: types.options[types.of_request[r]],
                                       chosen, lambda t: types.claims[t])
    meta["explain_seconds"] = round(time.monotonic() - started - meta["seconds"], 4)
    result = _result.build(requests, chosen, types, cluster, meta, unplaced)
    if lines and not allow_partial:
        raise PlacementError(
            "models do not fit:\n- " + "\n- ".join(lines), unplaced=unplaced, result=result)
    return result
