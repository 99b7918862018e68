# Copyright (c) teamllm.stack developers
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Why a model does not fit, and the smallest change that does.

For each unplaced request: its closest candidate (the option and GPU group nearest to fitting
the memory the plan leaves, one numpy pass per shape), how many GiB it is short, and
suggestions each checked by estimating again: a lower quantization, a shorter context, fewer
parallel sequences, fewer replicas. A suggestion is kept when it fits in the memory the
others leave, or (small sets) when a greedy re-plan of every model with the change places it
without dropping another model.
"""

from __future__ import annotations

import time

from ansible_collections.teamllm.stack.plugins.module_utils import _engines
from ansible_collections.teamllm.stack.plugins.module_utils._placement import (
    candidates as _candidates,
)
from ansible_collections.teamllm.stack.plugins.module_utils._placement import greedy as _greedy
from ansible_collections.teamllm.stack.plugins.module_utils._placement import needs as _needs
from ansible_collections.teamllm.stack.plugins.module_utils._placement._numpy import np

GIB = 1024**3
DETAIL_LIMIT = 10  # models explained in full (closest candidate and checked suggestions)
ANALYSE_LIMIT = 50  # models given a shortfall at all; the rest are only named
REPLAN_LIMIT = 60  # up to this many replicas in all, suggestions are also checked by a re-plan
EXPLAIN_BUDGET = 3.0  # seconds for suggestions; models left get the shortfall only
GGUF_LADDER = ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0", "Q3_K_M", "Q2_K")
VLLM_LADDER = ("BF16", "FP16", "FP8", "AWQ", "GPTQ")
GGUF_ENGINES = frozenset(_engines.names(gguf=True))


class Context:
    """What the explanations read: the cluster, needs, engines, estimator, the plan."""

    def __init__(self, cluster, needs, engines, estimator, requests, policy, counts):
        self.cluster, self.needs, self.engines = cluster, needs, engines
        self.estimator, self.requests, self.policy = estimator, requests, policy
        self.counts = counts  # replicas placed per request
        self.replan_ok = sum(r.replicas for r in requests) <= REPLAN_LIMIT

    def options(self, req):
        return _needs.options_for(req, self.cluster.hosts, self.needs, self.engines)

    def shaped(self, req, opts):
        """(option, shape, claims array) for every shape each option may use."""
        for option in opts:
            for s in self.cluster.shapes_for(req, option):
                need = self.needs.need(req, option, self.cluster.shape_totals[s])
                if need is not None:
                    yield option, s, need

    def replan(self, ri, changed):
        """Whether a greedy re-plan of every model, ``ri`` changed, places all of ``ri``
        without placing fewer of another."""
        reqs = self.requests[:ri] + [changed] + self.requests[ri + 1:]
        types = _candidates.Types(reqs, self.cluster, self.needs, self.engines)
        got = {}
        for r, _type, _group in _greedy.greedy(types, self.cluster, self.policy):
            got[r] = got.get(r, 0) + 1
        return got.get(ri, 0) >= changed.replicas and all(
            got.get(j, 0) >= self.counts.get(j, 0) for j in range(len(reqs)) if j != ri)


def _gib(value):
    return f"{value / GIB:.1f} GiB"


def describe_group(devices, group):
    first = devices[group[0]]
    if first.kind == "cpu":
        return f"{first.host} RAM ({_gib(first.capacity)} usable)"
    gpus = ", ".join(f"{devices[k].index}" for k in group)
    if len(group) > 1:
        return f"{first.host} GPUs {gpus} ({first.name}, {_gib(first.total)} each)"
    return f"{first.host} GPU {gpus} ({first.name}, {_gib(first.total)})"


def closest(ctx, req, opts, free):
    """(shortfall, option, host, group, need) nearest to fitting ``free``, or None when the
    estimator accepts no option."""
    best = None
    for option, s, need in ctx.shaped(req, opts):
        devs = ctx.cluster.shape_devs[s]
        short = (np.asarray(need.claims) - free[devs]).max(axis=1)
        i = int(np.argmin(np.maximum(short, 0)))
        group = ctx.cluster.group_devs[ctx.cluster.shape_groups[s][i]]
        rank = (max(int(short[i]), 0), -option.quality, option.size, group)
        if best is None or rank < best[0]:
            host = ctx.cluster.devices[group[0]].host
            best = (rank, int(short[i]), option, host, group, need)
    return None if best is None else best[1:]


def fits(ctx, req, opts, free, exclude=()):
    """Whether some option of ``req`` fits ``free`` on a group sharing no device with
    ``exclude`` (the devices its other replicas use)."""
    blocked = np.zeros(len(free), dtype=bool)
    blocked[list(exclude)] = True
    for _option, s, need in ctx.shaped(req, opts):
        devs = ctx.cluster.shape_devs[s]
        if ((np.asarray(need.claims) <= free[devs]).all(axis=1) & ~blocked[devs].any(axis=1)).any():
            return True
    return False


def _ladder(req, estimator):
    """Quantizations to try as "lower": the estimator's list for the model if it has one."""
    for attr in ("quantizations_for", "quantizations"):
        fn = getattr(estimator, attr, None)
        if callable(fn):
            try:
                listed = list(fn(req.model))
            except (ValueError, KeyError, TypeError):
                continue
            if listed:
                return [q if isinstance(q, str) else str(q) for q in listed]
    engines = [req.engine] if req.engine != "any" else list(_needs.ANY_ENGINES)
    ladder = []
    if any(e in GGUF_ENGINES for e in engines):
        ladder += GGUF_LADDER
    if "vllm" in engines:
        ladder += VLLM_LADDER
    return ladder


def _size(ctx, req):
    """Memory of the best option on its first shape: which fitting quantization is largest."""
    for _option, _s, need in ctx.shaped(req, ctx.options(req)):
        return sum(need.claims)
    return 0


def suggest(ctx, ri, req, free, exclude, placed):
    """The smallest changes to ``req`` that fit, each checked by estimating again."""

    def ok(changed):
        if fits(ctx, changed, ctx.options(changed), free, exclude):
            return True
        return ctx.replan_ok and ctx.replan(ri, changed)

    suggestions = []
    tried = {q.upper().replace("-", "_") for q in req.quantizations}
    lower = [q for q in _ladder(req, ctx.estimator)
             if q.upper().replace("-", "_") not in tried and ok(req.with_(quantizations=(q,)))]
    if lower:  # smallest change = the fitting quantization that needs the most memory
        pick = max(lower, key=lambda q: (_size(ctx, req.with_(quantizations=(q,))),
                                         -lower.index(q)))
        suggestions.append(f"quantization {pick}")
    if req.context > 256:  # the longest context, in steps of 256, that fits
        low, high = 0, (req.context - 1) // 256
        while low < high:
            mid = (low + high + 1) // 2
            if ok(req.with_(context=mid * 256)):
                low = mid
            else:
                high = mid - 1
        if low >= 1:
            suggestions.append(f"context {low * 256}")
    for parallel in range(req.parallel - 1, 0, -1):
        if ok(req.with_(parallel=parallel)):
            suggestions.append(f"parallel {parallel}")
            break
    if placed:
        suggestions.append(f"replicas {placed}")
    return suggestions


def explain(ctx, options, chosen, claims_of):
    """(message lines, unplaced entries) for the replicas ``chosen`` leaves out."""
    devices = ctx.cluster.devices
    free = ctx.cluster.capacity.copy()
    used_by = {}
    for r, t, g in chosen:
        for k, claim in zip(ctx.cluster.group_devs[g], claims_of(t), strict=False):
            free[k] -= claim
        used_by.setdefault(r, set()).update(ctx.cluster.group_devs[g])
    lines, unplaced, brief, detailed = [], [], [], 0
    deadline = time.monotonic() + EXPLAIN_BUDGET
    for ri, req in enumerate(ctx.requests):
        missing = req.replicas - ctx.counts.get(ri, 0)
        if missing <= 0:
            continue
        what = f"{missing} of {req.replicas} replicas of " if req.replicas > 1 else ""
        head = f"{what}model {req.alias}" + (f" ({req.model})" if req.alias != req.model else "")
        entry = {"name": req.alias, "model": req.model, "missing": missing}
        if len(unplaced) >= ANALYSE_LIMIT:
            entry.update(short_bytes=None, suggestions=[],
                         message=f"{head} does not fit (not analysed)")
            unplaced.append(entry)
            brief.append(req.alias)
            continue
        near = closest(ctx, req, options(ri), free)
        if near is None:
            where = f" on host {req.host}" if req.host else ""
            why = ctx.needs.errors.get((req.model, req.context, req.parallel))
            text = (f"{head} cannot run as asked{where} (engine {req.engine}, quantizations "
                    f"{', '.join(req.quantizations)}): "
                    + (f"the estimator says: {why}" if why else "no GPU or CPU host can take it"))
            entry["short_bytes"] = None
        else:
            short, option, host, group, need = near
            empty = max(c - devices[k].capacity for k, c in zip(group, need.claims, strict=True))
            text = (f"{head} does not fit: the closest is {option.engine} {option.quantization} "
                    f"context {req.context} on {describe_group(devices, group)}, needs "
                    f"{_gib(max(need.claims))} per device and is {_gib(max(short, 0))} short"
                    + (" even with nothing else on it" if empty > 0 else ""))
            entry["short_bytes"] = max(short, 0)
            entry["closest"] = {"engine": option.engine, "quantization": option.quantization,
                                "host": host, "gpus": [devices[k].index for k in group],
                                "need_bytes": list(need.claims)}
        if detailed >= DETAIL_LIMIT or time.monotonic() > deadline:
            entry.update(suggestions=[], message=text)
            unplaced.append(entry)
            brief.append(req.alias)
            continue
        detailed += 1
        entry["suggestions"] = suggest(ctx, ri, req, free, tuple(sorted(used_by.get(ri, ()))),
                                       ctx.counts.get(ri, 0))
        text += ("; it would fit with " + " or ".join(entry["suggestions"])
                 if entry["suggestions"] else
                 "; no single change to it fits: add GPU memory or remove another model")
        entry["message"] = text
        lines.append(text)
        unplaced.append(entry)
    if brief:
        lines.append(f"{len(brief)} more models do not fit: " + ", ".join(brief))
    return lines, unplaced
