# Copyright (c) teamllm.stack developers
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The class relaxation: an upper bound on any plan, and the packing it suggests.

Identical GPUs are interchangeable, so the relaxation counts replicas per request profile and
candidate type (option x shape) instead of placing them on GPUs: a continuous ``y_t`` per
type, at most the profile's replicas per profile, and per device class the memory of all its
devices (plus "large item" rows: at most k instances larger than 1/(k+1) of a device per
device, k = 1..3, and replicas of one model on distinct devices). Every plan satisfies these
rows, so the LP optimum bounds the score of every plan (replicas placed, then quality): a
plan that reaches it is optimal. It has a column per type, not per GPU, so it stays small on
thousands of GPUs.

The LP's solution then orders a packing (:func:`guided_items`): the replicas it places, on
the shapes it chose, biggest first; those it leaves out last, smallest first
(:func:`smallest_first_items` is the same without the LP). For binpack's stage 2, the same
rows with devices and hosts used per class bound the packing from below
(:func:`packing_bound`).
"""

from __future__ import annotations

import math

from ansible_collections.teamllm.stack.plugins.module_utils._placement import sparse
from ansible_collections.teamllm.stack.plugins.module_utils._placement._numpy import np

GIB = 1024**3
_LARGE_LEVELS = (1, 2, 3)


def _shape_classes(cluster, width):
    table = np.full((len(cluster.shape_keys), width), -1, dtype=np.int64)
    for s, (_kind, classes) in enumerate(cluster.shape_keys):
        table[s, :len(classes)] = classes
    return table


def trivial_bound(types):
    """Every replica at its best type, as many as its groups allow."""
    total = 0
    for p, members in enumerate(types.members):
        ids = [t for _option, ts in types.by_option[p] for t in ts]
        if not ids:
            continue
        groups = int(sum(types.groups[t] for t in ids))
        best = types.weight + int(types.rank[ids].max())
        total += sum(min(types.requests[r].replicas, groups) for r in members) * best
    return total


def build(types, cluster):
    """The relaxation as a :class:`sparse.Model` (maximise)."""
    model = sparse.Model()
    n_t = len(types.profile)
    replicas = np.array([sum(types.requests[r].replicas for r in m) for m in types.members],
                        dtype=np.float64)
    model.columns(types.weight + types.rank, 0.0, replicas[types.profile] if n_t else [],
                  integral=False)
    cols = np.arange(n_t)
    first = model.rows(-np.inf, replicas)
    model.add(cols, first + types.profile, 1.0)
    width = types.claims.shape[1]
    classes = _shape_classes(cluster, width)[types.shape] if n_t else np.zeros((0, width))
    n_c = len(cluster.class_keys)
    count = cluster.class_count.astype(np.float64)
    cap = cluster.class_capacity.astype(np.float64)
    first = model.rows(-np.inf, cap * count / GIB, name="memory")  # memory rows in GiB
    for j in range(width):
        on = classes[:, j] >= 0
        model.add(cols[on], first + classes[on, j], types.claims[on, j] / GIB)
    for k in _LARGE_LEVELS:
        first = model.rows(-np.inf, k * count, name=f"large{k}")
        for j in range(width):
            on = classes[:, j] >= 0
            large = on & (types.claims[:, j] > np.where(on, cap[classes[:, j]], 0) / (k + 1))
            model.add(cols[large], first + classes[large, j], 1.0)
    _distinct_rows(model, types, classes, count, n_c)
    return model


def _distinct_rows(model, types, classes, count, n_c):
    """Replicas of one model use distinct devices: per profile and class, the devices its
    types take count at most min(replicas, devices of the class) per request."""
    for p, members in enumerate(types.members):
        ids = np.array([t for _option, ts in types.by_option[p] for t in ts], dtype=np.int64)
        if not len(ids) or all(types.requests[r].replicas == 1 for r in members):
            continue
        uses = np.zeros((len(ids), n_c))
        for j in range(classes.shape[1]):
            on = classes[ids, j] >= 0
            np.add.at(uses, (np.flatnonzero(on), classes[ids[on], j]), 1.0)
        for c in np.flatnonzero(uses.any(axis=0)):
            limit = sum(min(types.requests[r].replicas * uses[:, c].max(), count[c])
                        for r in members)
            row = model.rows(-np.inf, [limit])
            hit = uses[:, c] > 0
            model.add(ids[hit], np.full(int(hit.sum()), row), uses[hit, c])


def solve(solver, types, cluster, seconds):
    """Solve the relaxation: (integer bound on the score, y per type, HiGHS's status)."""
    model = build(types, cluster)
    model.load(solver)
    outcome = solver.run(seconds)
    if not outcome.optimal or outcome.objective is None:
        return None, None, outcome.status
    value = outcome.objective
    return math.floor(value + 1e-6 * max(1.0, abs(value)) + 1e-3), outcome.values, outcome.status


def packing_value(types, cluster, chosen):
    """binpack's objective for a plan: hosts used x (most devices on a host + 1) + devices
    used (the MILP's stage 2 minimises the same)."""
    devices = {k for _r, _type, g in chosen for k in cluster.group_devs[g]}
    hosts = {int(cluster.dev_host[k]) for k in devices}
    return len(hosts) * _host_weight(cluster) + len(devices)


def _host_weight(cluster):
    return max((len(h.devices) for h in cluster.hosts.values()), default=1) + 1


def packing_bound(solver, types, cluster, score, seconds):
    """A lower bound on binpack's objective over every plan scoring at least ``score``:
    the relaxation's rows with devices used per class (``u_c``, memory and large items
    scaled by it) and hosts used per class of identical hosts (``v_h``). None if unsolved."""
    model = build(types, cluster)
    n_t, n_c = len(types.profile), len(cluster.class_keys)
    model.cost[0] = np.zeros(n_t)  # the y_t cost nothing here: they only keep the score
    row = model.rows(score - 0.5, np.inf, count=1)
    model.add(np.arange(n_t), np.full(n_t, row), types.weight + types.rank)
    count = cluster.class_count.astype(np.float64)
    u = model.columns(np.ones(n_c), 0.0, count, integral=False)
    # the memory and large-item rows of build() become "<= capacity x u_c", "<= k x u_c"
    for name, scale in (("memory", cluster.class_capacity / GIB),
                        *((f"large{k}", np.full(n_c, float(k))) for k in _LARGE_LEVELS)):
        model.set_upper(name, 0.0)
        first = model.named[name][1]
        model.add(u + np.arange(n_c), first + np.arange(n_c), -scale)
    host_classes = {}
    for name in cluster.host_names:
        key = tuple(sorted(int(cluster.dev_class[k]) for k in cluster.hosts[name].devices))
        if key:
            host_classes.setdefault(key, []).append(name)
    keys = sorted(host_classes)
    v = model.columns(np.full(len(keys), float(_host_weight(cluster))), 0.0,
                      [len(host_classes[k]) for k in keys], integral=False)
    first = model.rows(-np.inf, 0.0, count=n_c)  # u_c <= devices of class c on used hosts
    model.add(u + np.arange(n_c), first + np.arange(n_c), 1.0)
    for j, key in enumerate(keys):
        classes, per_host = np.unique(key, return_counts=True)
        model.add(np.full(len(classes), v + j), first + classes, -per_host.astype(np.float64))
    model.load(solver, maximize=False)
    outcome = solver.run(seconds)
    if not outcome.optimal or outcome.objective is None:
        return None
    return math.ceil(outcome.objective - 1e-6 * max(1.0, abs(outcome.objective)) - 1e-3)


def guided_items(types, y):
    """(items, targets). Items: per replica (request, tries), count first: the replicas the
    LP places, biggest first, each on the shape the LP chose with its smallest type there,
    then its smallest types on other shapes; then those the LP leaves out, smallest first.
    The LP saturates memory with better types where it can; packing those exactly is what
    fails, so quality is left to the upgrade pass, which tries the LP's types first
    (``targets``: request -> type ids)."""
    guided, rest, targets = [], [], {}
    by_volume, volume, shape = {}, types.volume.tolist(), types.shape.tolist()
    for p, members in enumerate(types.members):
        ids = sorted((t for _option, ts in types.by_option[p] for t in ts),
                     key=lambda t: (volume[t], t))
        by_volume[p] = ids
        tries_on = {}  # the LP's shape first, each type alone, smallest first
        values = {t: float(y[t]) for t in ids if y[t] > 1e-6}
        counts = {t: math.floor(v + 1e-6) for t, v in values.items()}
        extra = round(sum(values.values())) - sum(counts.values())
        for t in sorted(values, key=lambda t: (-(values[t] - counts[t]), t))[:max(0, extra)]:
            counts[t] += 1
        queue = [t for t in sorted(counts, key=lambda t: (-volume[t], t))
                 for _copy in range(counts[t])]
        queue.reverse()
        for r in members:
            for _replica in range(types.requests[r].replicas):
                if queue:
                    t = queue.pop()
                    if shape[t] not in tries_on:
                        tries_on[shape[t]] = sorted(([i] for i in ids), key=lambda i: (
                            shape[i[0]] != shape[t], volume[i[0]], i[0]))
                    guided.append((r, volume[t], tries_on[shape[t]]))
                    targets.setdefault(r, []).append(t)
                elif ids:
                    rest.append(r)
    pinned = [types.requests[r].host is not None for r in range(len(types.requests))]
    guided.sort(key=lambda item: (not pinned[item[0]], -item[1], item[0]))
    smallest = {r: volume[by_volume[types.of_request[r]][0]] for r in set(rest)}
    rest.sort(key=lambda r: (not pinned[r], smallest[r], r))
    return ([(r, tries) for r, _volume, tries in guided]
            + [(r, [[t] for t in by_volume[types.of_request[r]]]) for r in rest]), targets


def smallest_first_items(types):
    """Per replica (request, tries): requests by their smallest type, smallest first, each
    trying its types smallest first: the most replicas a greedy packs, before upgrades."""
    volume = types.volume.tolist()
    tries = [[[t] for t in sorted((t for _option, ts in by for t in ts), key=lambda t: (volume[t], t))]
             for by in types.by_option]
    items = []
    for r in sorted((r for r in range(len(types.requests)) if tries[types.of_request[r]]),
                    key=lambda r: (types.requests[r].host is None,
                                   volume[tries[types.of_request[r]][0][0]], r)):
        items.extend((r, tries[types.of_request[r]]) for _replica in range(types.requests[r].replicas))
    return items
