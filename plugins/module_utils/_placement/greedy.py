# Copyright (c) teamllm.stack developers
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The greedy packing: one replica at a time, each on the best group that fits.

``binpack`` takes, for each option in turn (best first), the group with the least memory
left (best fit), on a host already in use when several leave as little; ``spread`` the group
on a host without a replica of the model, then with the lowest load after placing it (worst
fit). Replicas of one model
use distinct GPUs. Each try is one numpy pass over the groups of one shape.

:func:`greedy` places the models biggest first (pinned ones before), as GPUStack does; the
class relaxation hands :func:`pack` its own order and preferred types instead.
"""

from __future__ import annotations

from ansible_collections.teamllm.stack.plugins.module_utils._placement._numpy import np


class State:
    """Free memory per device, hosts in use, and each request's devices and hosts."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.free = cluster.capacity.copy()
        self.host_used = np.zeros(len(cluster.host_names), dtype=bool)
        self.class_devs = [np.flatnonzero(cluster.dev_class == c)
                           for c in range(len(cluster.class_keys))]
        self.class_max = np.array([self.free[d].max(initial=0) for d in self.class_devs],
                                  dtype=np.int64)
        self.mine = {}  # request -> device keys its replicas use
        self.mask = np.zeros(len(cluster.devices), dtype=bool)
        self.avoid = np.zeros(len(cluster.host_names), dtype=bool)
        self.allowed = None  # hosts a replica may go to (None: all)

    def take(self, r, claims, group):
        devs = self.cluster.group_devs[group]
        for k, claim in zip(devs, claims, strict=False):
            self.free[k] -= claim
        self.host_used[self.cluster.group_host[group]] = True
        self.mine.setdefault(r, []).extend(devs)
        for c in {int(self.cluster.dev_class[k]) for k in devs}:
            self.class_max[c] = self.free[self.class_devs[c]].max()

    def give_back(self, r, claims, group):
        devs = self.cluster.group_devs[group]
        for k, claim in zip(devs, claims, strict=False):
            self.free[k] += claim
        for k in devs:
            self.mine[r].remove(k)
        for c in {int(self.cluster.dev_class[k]) for k in devs}:
            self.class_max[c] = self.free[self.class_devs[c]].max()


def _pick(state, types, t, policy, excluding):
    """(rank, group) of the best group for type ``t``, or None."""
    cluster = state.cluster
    s = int(types.shape[t])
    size = cluster.shape_size[s]
    claims = types.claims[t, :size]
    classes = cluster.shape_keys[s][1]
    if any(claims[j] > state.class_max[classes[j]] for j in range(size)):
        return None
    devs = cluster.shape_devs[s]
    slack = state.free[devs] - claims
    ok = (slack >= 0).all(axis=1)
    if excluding:
        ok &= ~state.mask[devs].any(axis=1)
    if not ok.any():
        return None
    hosts = cluster.group_host[cluster.shape_groups[s]]
    if state.allowed is not None:
        ok &= state.allowed[hosts]
        if not ok.any():
            return None
    if policy == "binpack":
        key = slack.sum(axis=1) * 2.0 + ~state.host_used[hosts]
    else:
        load = (1.0 - slack / cluster.capacity[devs].clip(min=1)).max(axis=1)
        key = state.avoid[hosts] * 2.0 + load
    key[~ok] = np.inf
    i = int(np.argmin(key))
    return (float(key[i]), int(cluster.shape_groups[s][i])), int(cluster.shape_groups[s][i])


def place(state, types, r, tries, policy):
    """Place one replica of request ``r``: ``tries`` is a list of lists of type ids; the
    first list with a type that fits wins, the best group among its types. Returns the
    (request, type, group) taken, or None."""
    mine = state.mine.get(r, ())
    excluding = bool(mine)
    if excluding:
        state.mask[mine] = True
        if policy == "spread":
            state.avoid[state.cluster.dev_host[mine]] = True
    try:
        for alternatives in tries:
            best = None
            for t in alternatives:
                found = _pick(state, types, t, policy, excluding)
                if found is not None and (best is None or found[0] < best[0]):
                    best = (found[0], t, found[1])
            if best is not None:
                _cost, t, group = best
                state.take(r, types.claims[t], group)
                return r, t, group
        return None
    finally:
        if excluding:
            state.mask[mine] = False
            state.avoid[:] = False


def default_tries(types, r):
    """Options of ``r`` best first; the shapes of one option compete."""
    return [ids for _option, ids in types.by_option[types.of_request[r]]]


def size_key(types, r):
    """Memory of a request's best type (0 when nothing fits): the decreasing order."""
    ids = types.of(r)
    return int(types.volume[ids[0]]) if ids else 0


def greedy(types, cluster, policy):
    """Place every replica, models biggest first (pinned ones before)."""
    requests = types.requests
    order = sorted(range(len(requests)), key=lambda r: (
        requests[r].host is None, -size_key(types, r), r))
    state = State(cluster)
    chosen = []
    for r in order:
        tries = default_tries(types, r)
        for _replica in range(requests[r].replicas):
            got = place(state, types, r, tries, policy)
            if got is None:
                break
            chosen.append(got)
    return chosen


def pack(types, cluster, policy, items):
    """Place ``items`` in order: (request, tries) per replica (see :func:`place`)."""
    state = State(cluster)
    chosen = []
    for r, tries in items:
        got = place(state, types, r, tries, policy)
        if got is not None:
            chosen.append(got)
    return chosen, state


def upgrade(types, cluster, policy, chosen, state, targets=None):
    """Move placed replicas to a better option where one fits now (quality only grows),
    trying ``targets[request]`` (type ids) first."""
    result = list(chosen)
    targets = targets or {}
    for i, (r, t, group) in enumerate(result):
        better = [[x] for x in targets.get(r, ()) if types.quality[x] > types.quality[t]] + [
            ids for option, ids in types.by_option[types.of_request[r]]
            if option.quality > types.quality[t]]
        if not better:
            continue
        state.give_back(r, types.claims[t], group)
        got = place(state, types, r, better, policy)
        if got is None:
            state.take(r, types.claims[t], group)
        else:
            result[i] = got
    return result


def repack(types, cluster, chosen):
    """binpack, host by host: the same replicas at the same quality, biggest first, each on
    the tightest group of the hosts opened so far; a host is opened (largest first) only
    when none of them has room. None when a replica finds no room at all."""
    state = State(cluster)
    state.allowed = np.zeros(len(cluster.host_names), dtype=bool)
    size = np.zeros(len(cluster.host_names), dtype=np.int64)
    np.add.at(size, cluster.dev_host, cluster.capacity)
    closed = sorted(range(len(cluster.host_names)), key=lambda h: (-size[h], h))
    closed.reverse()
    same = {}  # (profile, quality) -> type ids: the same option on any shape
    for t in range(len(types.profile)):
        same.setdefault((int(types.profile[t]), int(types.quality[t])), []).append(t)
    result = []
    for r, t, _group in sorted(chosen, key=lambda c: (-int(types.volume[c[1]]), c[0], c[1])):
        tries = [same[(int(types.profile[t]), int(types.quality[t]))]]
        got = place(state, types, r, tries, "binpack")
        while got is None and closed:
            state.allowed[closed.pop()] = True
            got = place(state, types, r, tries, "binpack")
        if got is None:
            return None
        result.append(got)
    return result
