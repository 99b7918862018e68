# Copyright (c) teamllm.stack developers
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Candidates: where each request may run, built per class of identical GPUs, not per GPU.

Devices fall into **classes** (kind, memory, and the host when a model is pinned to it); a
**shape** is the tuple of classes of a GPU group (or one RAM device). A need depends only on
the shape, so each request *profile* (model, engine, quantizations, context, parallel,
options, pinned host: see ``Request.profile``) gets its candidate **types** (option x shape,
dominated ones removed) once; a per-GPU candidate is a type on one group of its shape. The
cluster's groups and the types are numpy arrays, so the greedy, the class relaxation and the
MILP work on whole shapes at once.
"""

from __future__ import annotations

from ansible_collections.teamllm.stack.plugins.module_utils._placement import needs as _needs
from ansible_collections.teamllm.stack.plugins.module_utils._placement._numpy import np


class Cluster:
    """Devices, classes, groups and shapes of the planned hosts (plain arrays)."""

    def __init__(self, devices, hosts, pinned=()):
        self.devices = devices
        self.hosts = hosts
        self.host_names = sorted(hosts)
        host_index = {name: i for i, name in enumerate(self.host_names)}
        self.dev_host = np.array([host_index[d.host] for d in devices], dtype=np.int64)
        self.capacity = np.array([d.capacity for d in devices], dtype=np.int64)
        classes, dev_class = {}, []
        for d in devices:
            key = (d.kind, d.total, d.host if d.host in pinned else None)
            dev_class.append(classes.setdefault(key, len(classes)))
        self.class_keys = list(classes)
        self.dev_class = np.array(dev_class, dtype=np.int64)
        self.class_count = np.bincount(self.dev_class, minlength=len(classes))
        self.class_capacity = np.zeros(len(classes), dtype=np.int64)
        self.class_capacity[self.dev_class] = self.capacity
        shapes, group_devs, group_host, group_shape = {}, [], [], []
        for name in self.host_names:
            host = hosts[name]
            if host.kind == "cpu":
                groups = [host.devices]
            else:
                groups = [g for size in sorted(host.blocks) for g in host.blocks[size]]
            for group in groups:
                kind = devices[group[0]].kind
                key = (kind, tuple(int(self.dev_class[k]) for k in group))
                group_shape.append(shapes.setdefault(key, len(shapes)))
                group_devs.append(group)
                group_host.append(host_index[name])
        self.group_devs = group_devs  # tuples of device keys
        width = max((len(g) for g in group_devs), default=1)
        self.group_table = np.full((len(group_devs), width), -1, dtype=np.int64)
        for g, devs in enumerate(group_devs):
            self.group_table[g, :len(devs)] = devs
        self.group_host = np.array(group_host, dtype=np.int64)
        self.group_shape = np.array(group_shape, dtype=np.int64)
        self.shape_keys = list(shapes)
        self.shape_kind = [k for k, _classes in self.shape_keys]
        self.shape_size = [len(c) for _kind, c in self.shape_keys]
        self.shape_totals = [tuple(self.class_keys[c][1] for c in cls) for _kind, cls in self.shape_keys]
        self.shape_caps = [tuple(int(self.class_capacity[c]) for c in cls)
                           for _kind, cls in self.shape_keys]
        self.shape_host = [_shape_host(self.class_keys, cls) for _kind, cls in self.shape_keys]
        self.shape_groups, self.shape_devs = [], []
        for s in range(len(self.shape_keys)):
            ids = np.flatnonzero(self.group_shape == s)
            self.shape_groups.append(ids)
            self.shape_devs.append(np.array([group_devs[g] for g in ids], dtype=np.int64)
                                   .reshape(len(ids), self.shape_size[s]))

    def shapes_for(self, req, option):
        """Shapes ``option`` of ``req`` may use: its kind and size, on its pinned host."""
        return [s for s in range(len(self.shape_keys))
                if self.shape_kind[s] == option.kind and self.shape_size[s] == option.size
                and (req.host is None or self.shape_host[s] == req.host)]


def _shape_host(class_keys, classes):
    hosts = {class_keys[c][2] for c in classes}
    return hosts.pop() if len(hosts) == 1 else None


class Types:
    """Candidate types per request profile: (option, shape, need), dominated ones removed.

    ``of_request[r]`` is the profile index of request r; per profile, ``by_option[p]`` lists
    ``(option, [type ids])`` best option first. Arrays per type: ``profile``, ``shape``,
    ``size``, ``quality``, ``rank`` (dense rank of the quality within its profile, 0 =
    worst), ``claims`` (bytes per group position, padded with 0), ``volume`` (their sum).
    """

    def __init__(self, requests, cluster, needs, engines):
        self.requests = requests
        profiles, of_request = {}, []
        for req in requests:
            of_request.append(profiles.setdefault(req.profile, len(profiles)))
        self.of_request = np.array(of_request, dtype=np.int64)
        self.members = [[] for _profile in profiles]
        for r, p in enumerate(of_request):
            self.members[p].append(r)
        self.options, self.by_option, rows = [], [], []
        everywhere = _needs.pool(cluster.hosts)
        for p in range(len(profiles)):
            req = requests[self.members[p][0]]
            opts = _needs.options_for(req, cluster.hosts, needs, engines, everywhere)
            self.options.append(opts)
            self.by_option.append(_profile_types(p, req, opts, cluster, needs, rows))
        self.option = [row[1] for row in rows]
        self.need = [row[3] for row in rows]
        width = max([1, *(len(row[3].claims) for row in rows)])
        self.profile = np.array([row[0] for row in rows], dtype=np.int64)
        self.shape = np.array([row[2] for row in rows], dtype=np.int64)
        self.size = np.array([len(row[3].claims) for row in rows], dtype=np.int64)
        self.quality = np.array([row[1].quality for row in rows], dtype=np.int64)
        self.claims = np.zeros((len(rows), width), dtype=np.int64)
        for t, row in enumerate(rows):
            self.claims[t, :len(row[3].claims)] = row[3].claims
        self.volume = self.claims.sum(axis=1)
        self.rank = np.zeros(len(rows), dtype=np.int64)
        self.levels = np.ones(len(profiles), dtype=np.int64)
        for p in range(len(profiles)):
            ids = [t for _option, ts in self.by_option[p] for t in ts]
            if ids:
                qualities = sorted({int(self.quality[t]) for t in ids})
                self.levels[p] = len(qualities)
                for t in ids:
                    self.rank[t] = qualities.index(int(self.quality[t]))
        n_groups = np.array([len(g) for g in cluster.shape_groups], dtype=np.int64)
        self.groups = n_groups[self.shape] if len(rows) else np.zeros(0, dtype=np.int64)
        replicas = np.array([r.replicas for r in requests], dtype=np.int64)
        self.total_replicas = int(replicas.sum())
        # one more replica placed outweighs every quality step
        self.weight = int(self.levels.max(initial=1)) * self.total_replicas + 1

    def of(self, r):
        """Type ids of request ``r``, best option first."""
        return [t for _option, ts in self.by_option[self.of_request[r]] for t in ts]

    def count(self, mask=None):
        """Per-GPU candidates (request x type x group of its shape), optionally only types
        where ``mask`` is true."""
        per_profile = np.bincount(self.profile, weights=self.groups if mask is None
                                  else self.groups * mask, minlength=len(self.members))
        return int(sum(per_profile[p] * len(m) for p, m in enumerate(self.members)))

    def expand(self, cluster, mask=None):
        """Per-GPU candidates as arrays (request, type, group), requests in order, each
        request's types best first, groups in host order."""
        reqs, types, groups = [], [], []
        for r in range(len(self.requests)):
            for t in self.of(r):
                if mask is not None and not mask[t]:
                    continue
                ids = cluster.shape_groups[self.shape[t]]
                reqs.append(np.full(len(ids), r, dtype=np.int64))
                types.append(np.full(len(ids), t, dtype=np.int64))
                groups.append(ids)
        if not reqs:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        return np.concatenate(reqs), np.concatenate(types), np.concatenate(groups)

    def score(self, chosen):
        """(replicas placed, their quality ranks summed, weighted score) of a plan: a list
        of (request, type, group)."""
        quality = int(sum(int(self.rank[t]) for _r, t, _group in chosen))
        return len(chosen), quality, len(chosen) * self.weight + quality


def _profile_types(p, req, opts, cluster, needs, rows):
    """Append the undominated types of profile ``p`` to ``rows``; return them by option."""
    kept = {}  # shape -> claims of the types kept on it (better options come first)
    by_option = []
    for option in opts:
        ids = []
        for s in cluster.shapes_for(req, option):
            need = needs.need(req, option, cluster.shape_totals[s])
            if need is None or any(c > cap for c, cap in zip(
                    need.claims, cluster.shape_caps[s], strict=True)):
                continue
            # a better option on the same shape that takes no more memory dominates
            if any(all(a <= b for a, b in zip(claims, need.claims, strict=True))
                   for claims in kept.get(s, ())):
                continue
            kept.setdefault(s, []).append(need.claims)
            ids.append(len(rows))
            rows.append((p, option, s, need))
        if ids:
            by_option.append((option, ids))
    return by_option
